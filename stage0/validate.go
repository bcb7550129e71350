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

// ParseEnvFile reads an --set-env-file with the rules of systemd's
// EnvironmentFile= (systemd.exec(5)): NAME=VALUE lines; blank lines; lines
// starting with # or ; are comments; white space around the name and
// around an unquoted value is dropped; a value may be quoted, in 'single
// quotes' (taken as is, newlines included) or "double quotes" (where \",
// \\, \$ and \` stand for the character and a backslash-newline is
// dropped); outside quotes a backslash takes the next character as is,
// and a backslash at the end of a line continues the line (in comments
// too). It returns NAME=VALUE strings; name is for errors. A line that is
// not an assignment ("export NAME=..." included) is an error.
func ParseEnvFile(name string, data []byte) ([]string, error) {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		single
		double
		doubleEscape
		comment
		commentEscape
	)
	var out []string
	var k, v strings.Builder
	trailing := -1 // start of the unquoted value's trailing white space, or -1
	line, keyLine := 1, 1
	state := preKey
	finish := func() error {
		val := v.String()
		if trailing >= 0 {
			val = val[:trailing]
		}
		kv := strings.TrimRight(k.String(), " \t") + "=" + val
		k.Reset()
		v.Reset()
		trailing = -1
		if err := CheckEnvVar(kv); err != nil {
			if strings.HasPrefix(kv, "export ") {
				err = fmt.Errorf("%w (the file holds NAME=VALUE lines, not shell: drop \"export\")", err)
			}
			return fmt.Errorf("%s:%d: %w", name, keyLine, err)
		}
		out = append(out, kv)
		return nil
	}
	for _, c := range []byte(data) {
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = comment
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			default:
				keyLine = line
				k.WriteByte(c)
				state = key
			}
		case key:
			switch c {
			case '=':
				state = preValue
			case '\n':
				return nil, fmt.Errorf("%s:%d: %q: want NAME=VALUE", name, keyLine, strings.TrimSpace(k.String()))
			default:
				k.WriteByte(c)
			}
		case preValue, value:
			switch {
			case c == '\n':
				if err := finish(); err != nil {
					return nil, err
				}
				state = preKey
			case c == '\\':
				state = valueEscape
			case state == preValue && (c == ' ' || c == '\t'):
			case state == preValue && c == '\'':
				state = single
			case state == preValue && c == '"':
				state = double
			default:
				if c == ' ' || c == '\t' {
					if trailing < 0 {
						trailing = v.Len()
					}
				} else {
					trailing = -1
				}
				v.WriteByte(c)
				state = value
			}
		case valueEscape:
			if c != '\n' {
				v.WriteByte(c)
				trailing = -1
			}
			state = value
		case single:
			if c == '\'' {
				state = value
			} else {
				v.WriteByte(c)
			}
		case double:
			switch c {
			case '"':
				state = value
			case '\\':
				state = doubleEscape
			default:
				v.WriteByte(c)
			}
		case doubleEscape:
			switch c {
			case '"', '\\', '$', '`':
				v.WriteByte(c)
			case '\n':
			default:
				v.WriteByte('\\')
				v.WriteByte(c)
			}
			state = double
		case comment:
			if c == '\\' {
				state = commentEscape
			} else if c == '\n' {
				state = preKey
			}
		case commentEscape:
			state = comment
		}
		if c == '\n' {
			line++
		}
	}
	switch state {
	case key:
		return nil, fmt.Errorf("%s:%d: %q: want NAME=VALUE", name, keyLine, strings.TrimSpace(k.String()))
	case single, double, doubleEscape:
		return nil, fmt.Errorf("%s:%d: a quoted value is not closed", name, keyLine)
	case preValue, value, valueEscape:
		if err := finish(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
