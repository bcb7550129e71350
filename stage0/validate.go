package stage0

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/appc/spec/schema/types"
)

// envName is what appc (and so the pod manifest) takes as an environment
// variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9.-]*$`)

// Check refuses what the pod manifest cannot hold — app names that are
// not ACNames, environment variables whose names are not identifiers —
// with an error naming the flag, so that it fails before anything is
// fetched or any pod directory exists.
func (spec *PodSpec) Check() error {
	for _, as := range spec.Apps {
		if as.Name != "" {
			if err := CheckAppName(as.Name); err != nil {
				return fmt.Errorf("image %s: --name: %w", as.Image, err)
			}
		}
		for _, kv := range as.Environment {
			if err := CheckEnvVar(kv); err != nil {
				return fmt.Errorf("image %s: --environment: %w", as.Image, err)
			}
		}
	}
	if spec.Hostname != "" {
		if err := CheckHostname(spec.Hostname); err != nil {
			return fmt.Errorf("--hostname: %w", err)
		}
	}
	for _, kv := range spec.SetEnv {
		if err := CheckEnvVar(kv); err != nil {
			return fmt.Errorf("--set-env: %w", err)
		}
	}
	for _, kv := range spec.SetEnvFile {
		if err := CheckEnvVar(kv); err != nil {
			return fmt.Errorf("--set-env-file: %w", err)
		}
	}
	return nil
}

// CheckAppName checks an app name: an appc ACName (lower-case letters,
// digits and single dashes inside), as the pod directory uses it as a
// path component.
func CheckAppName(name string) error {
	if _, err := types.NewACName(name); err == nil {
		return nil
	}
	msg := fmt.Sprintf("%q is not an app name: use lower-case letters, digits and dashes, not at either end", name)
	if s, err := types.SanitizeACName(name); err == nil {
		msg += fmt.Sprintf(" (e.g. %q)", s)
	}
	return fmt.Errorf("%s", msg)
}

// hostLabel is one label of an RFC 1123 host name.
var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// CheckHostname checks a pod's host name: an RFC 1123 name of at most
// 253 characters, dot-separated labels of 1 to 63 letters, digits and
// dashes, not starting or ending with a dash.
func CheckHostname(name string) error {
	if len(name) > 253 {
		return fmt.Errorf("%q is not a host name: longer than 253 characters", name)
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabel.MatchString(l) {
			return fmt.Errorf("%q is not a host name (RFC 1123): use dot-separated labels of 1 to 63 letters, digits and dashes, not starting or ending with a dash", name)
		}
	}
	return nil
}

// CheckEnvVar checks one K=V environment assignment.
func CheckEnvVar(kv string) error {
	k, _, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%q: want K=V", kv)
	}
	if !envName.MatchString(k) {
		return fmt.Errorf("%q: %q is not a variable name: use letters, digits, '_', '.' and '-', not starting with a digit", kv, k)
	}
	return nil
}

// ParseEnvFile reads the lines of an --set-env-file: NAME=VALUE lines,
// blank lines and # comments. name is for errors.
func ParseEnvFile(name string, data []byte) ([]string, error) {
	var out []string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := CheckEnvVar(line); err != nil {
			if strings.HasPrefix(line, "export ") {
				err = fmt.Errorf("%w (the file holds K=V lines, not shell: drop \"export\")", err)
			}
			return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
		}
		out = append(out, line)
	}
	return out, nil
}
