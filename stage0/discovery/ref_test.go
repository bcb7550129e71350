package discovery

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestParseImageRef(t *testing.T) {
	for _, tc := range []struct {
		in     string
		name   string
		labels map[string]string
	}{
		{"example.com/app", "example.com/app", map[string]string{}},
		{"example.com/app:1.0", "example.com/app", map[string]string{"version": "1.0"}},
		{"example.com/app:v1.0.0-rc1,os=linux", "example.com/app", map[string]string{"version": "v1.0.0-rc1", "os": "linux"}},
		{"example.com/app,version=2,arch=aarch64,channel=a=b", "example.com/app", map[string]string{"version": "2", "arch": "aarch64", "channel": "a=b"}},
		{"coreos.com/etcd", "coreos.com/etcd", map[string]string{}},
	} {
		name, labels, err := ParseImageRef(tc.in)
		if err != nil {
			t.Errorf("ParseImageRef(%q): %v", tc.in, err)
			continue
		}
		if name != tc.name || !reflect.DeepEqual(labels, tc.labels) {
			t.Errorf("ParseImageRef(%q) = %q, %v; want %q, %v", tc.in, name, labels, tc.name, tc.labels)
		}
	}
	for in, want := range map[string]string{
		"":                            "empty appc image name",
		"Example.com/app":             "not a valid appc image name",
		"example.com/app:":            "empty version",
		"example.com/app,os":          "not LABEL=VALUE",
		"example.com/app,=x":          "not LABEL=VALUE",
		"example.com/app,os=":         "not LABEL=VALUE",
		"example.com/app,OS=linux":    "label name",
		"example.com/app:1,version=2": `label "version" given twice`,
		"example.com/app,os=a,os=b":   `label "os" given twice`,
		"https://example.com/app.aci": "is a URL",
		"example.com//app":            "not a valid appc image name",
		"example.com/app/":            "not a valid appc image name",
	} {
		if _, _, err := ParseImageRef(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseImageRef(%q): %v, want an error with %q", in, err, want)
		}
	}
}

func TestHostLabels(t *testing.T) {
	l := HostLabels()
	if l["os"] != runtime.GOOS || l["arch"] == "" {
		t.Errorf("HostLabels = %v", l)
	}
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "aarch64", "386": "i386", "arm": "armv7l", "ppc64le": "ppc64le", "s390x": "s390x"} {
		if got := appcArch(goarch); got != want {
			t.Errorf("appcArch(%s) = %s, want %s", goarch, got, want)
		}
	}
}

func TestCoversName(t *testing.T) {
	for _, tc := range []struct {
		prefix, name string
		want         bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "example.com/app", true},
		{"example.com/", "example.com/app", true},
		{"example.com/app", "example.com/app/sub", true},
		{"example.com/app", "example.com/apple", false},
		{"example.com/app", "example.com", false},
		{"example.co", "example.com", false},
	} {
		if got := coversName(tc.prefix, tc.name); got != tc.want {
			t.Errorf("coversName(%q, %q) = %v", tc.prefix, tc.name, got)
		}
	}
}
