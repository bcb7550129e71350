package discovery

import (
	"sort"
	"strings"
	"testing"
)

// FuzzParseImageRef: the discovery reference parser never panics; what
// it accepts has a valid name, label names of the appc grammar and no
// empty value, and writes back to a reference that parses the same.
func FuzzParseImageRef(f *testing.F) {
	for _, s := range []string{"example.com/app", "example.com/app:1.0,os=linux", "a:b:c", "a,b=", "https://x/y", "a,os=linux,os=darwin",
		"UPPER.com/x", "a,Bad=1", "a:1,version=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, labels, err := ParseImageRef(s)
		if err != nil {
			return
		}
		if err := ValidateName(name); err != nil {
			t.Fatalf("%q: accepted name %q: %v", s, name, err)
		}
		keys := make([]string, 0, len(labels))
		for k, v := range labels {
			if v == "" || k != "version" && !acName.MatchString(k) {
				t.Fatalf("%q: accepted label %q=%q", s, k, v)
			}
			if strings.Contains(v, ",") {
				return
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ref := name
		for _, k := range keys {
			ref += "," + k + "=" + labels[k]
		}
		name2, labels2, err := ParseImageRef(ref)
		if err != nil || name2 != name || len(labels2) != len(labels) {
			t.Fatalf("%q -> %q: %q %v %v", s, ref, name2, labels2, err)
		}
		for k, v := range labels {
			if labels2[k] != v {
				t.Fatalf("%q -> %q: label %s = %q, want %q", s, ref, k, labels2[k], v)
			}
		}
	})
}
