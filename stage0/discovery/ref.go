package discovery

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
)

var (
	// acIdentifier is the appc image name grammar.
	acIdentifier = regexp.MustCompile(`^[a-z0-9]+([-._~/][a-z0-9]+)*$`)
	// acName is the appc label name grammar.
	acName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// ValidateName checks that name is a valid appc image name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("empty appc image name: give a name like example.com/app")
	}
	if !acIdentifier.MatchString(name) {
		return fmt.Errorf("%q is not a valid appc image name: use lowercase letters, digits and single '-', '.', '_', '~' or '/' between them, like example.com/app", name)
	}
	return nil
}

// ParseImageRef splits an image reference as typed on the command line,
// NAME[:VERSION][,LABEL=VALUE...], such as "example.com/app:1.0,os=linux",
// into the name and its labels. ":VERSION" is shorthand for
// ",version=VERSION". No defaults are added: see DiscoverImage.
func ParseImageRef(s string) (name string, labels map[string]string, err error) {
	if strings.Contains(s, "://") {
		return "", nil, fmt.Errorf("image %q is a URL, not an appc image name", s)
	}
	parts := strings.Split(s, ",")
	name = parts[0]
	labels = make(map[string]string)
	if i := strings.IndexByte(name, ':'); i >= 0 {
		version := name[i+1:]
		name = name[:i]
		if version == "" {
			return "", nil, fmt.Errorf("image %q: empty version after ':'", s)
		}
		labels["version"] = version
	}
	if err := ValidateName(name); err != nil {
		return "", nil, fmt.Errorf("image %q: %w", s, err)
	}
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return "", nil, fmt.Errorf("image %q: label %q is not LABEL=VALUE", s, kv)
		}
		if !acName.MatchString(k) {
			return "", nil, fmt.Errorf("image %q: label name %q must be lowercase letters and digits with single '-' between them", s, k)
		}
		if _, dup := labels[k]; dup {
			return "", nil, fmt.Errorf("image %q: label %q given twice", s, k)
		}
		labels[k] = v
	}
	return name, labels, nil
}

// HostLabels returns the appc "os" and "arch" labels of this host.
func HostLabels() map[string]string {
	return map[string]string{"os": runtime.GOOS, "arch": appcArch(runtime.GOARCH)}
}

// appcArch maps a GOARCH to the appc architecture name (appc spec,
// "Architecture"), which follows uname -m rather than Go.
func appcArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm64":
		return "aarch64"
	case "arm":
		return "armv7l"
	}
	return goarch // amd64, ppc64, ppc64le, s390x are spelled the same
}

// namePrefixes returns the path-component prefixes of name, longest
// first: "a.com/b/c" gives "a.com/b/c", "a.com/b", "a.com".
func namePrefixes(name string) []string {
	parts := strings.Split(name, "/")
	out := make([]string, 0, len(parts))
	for i := len(parts); i > 0; i-- {
		out = append(out, strings.Join(parts[:i], "/"))
	}
	return out
}

// coversName reports whether prefix equals name or is a path-component
// prefix of it ("a.com/b" covers "a.com/b/c", not "a.com/bc").
func coversName(prefix, name string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return name == prefix || strings.HasPrefix(name, prefix+"/")
}
