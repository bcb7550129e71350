package aci_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/aci"
)

// FuzzParseManifest: any bytes either fail with an error of class
// ErrInvalid or give a manifest that writes out again and parses back
// to the same JSON; nothing panics (appc's decoder does on an isolator
// without a value).
func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","labels":[{"name":"version","value":"1.0"}]}`,
		`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","app":{"exec":["/bin/sh","-c","x"],"user":"0","group":"0",` +
			`"environment":[{"name":"A","value":"1"}],"mountPoints":[{"name":"data","path":"/data"}],"ports":[{"name":"http","protocol":"tcp","port":80}],` +
			`"isolators":[{"name":"resource/memory","value":{"limit":"128M"}},{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_ADMIN"]}}]},` +
			`"dependencies":[{"imageName":"example.com/base","labels":[{"name":"version","value":"2"}]}],"annotations":[{"name":"authors","value":"x"}]}`,
		`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"resource/memory"}]}}`,
		`{"acKind":"PodManifest","acVersion":"0.8.11"}`,
		`{"acKind":"ImageManifest","acVersion":"7.0.0","name":"a"}`,
		`{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := aci.ParseManifest(data)
		if err != nil {
			return
		}
		out, err := m.MarshalJSON()
		if err != nil {
			// appc validates on the way out more than on the way in;
			// what matters is that nothing panicked.
			return
		}
		m2, err := aci.ParseManifest(out)
		if err != nil {
			t.Fatalf("a parsed manifest does not parse again: %v\n%s", err, out)
		}
		out2, err := m2.MarshalJSON()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the manifest (%v):\n%s\n%s", err, out, out2)
		}
	})
}

// FuzzParseRef: the image reference parser of rkt fetch/run (names from
// the command line) never panics, and what it accepts is a valid appc
// name with labels that print back to a reference that parses the same.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"example.com/app", "example.com/app:1.0", "example.com/app:1.0,os=linux,arch=amd64",
		"example.com/app,version=1", "a:", "a,=b", ":1", "Example.com", "a:b:c", "a,b", "a,k=v=w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nl, err := aci.ParseRef(s)
		if err != nil {
			return
		}
		if _, err := types.NewACIdentifier(nl.Name); err != nil {
			t.Fatalf("%q: accepted name %q: %v", s, nl.Name, err)
		}
		if v, ok := nl.Labels["version"]; ok && v == "" {
			t.Fatalf("%q: empty version accepted", s)
		}
		for k, v := range nl.Labels {
			if strings.ContainsAny(k+v, ",:=") {
				return // not representable in the short form
			}
		}
		back, err := aci.ParseRef(nl.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, nl.String(), err)
		}
		a, _ := json.Marshal(nl)
		b, _ := json.Marshal(back)
		if !bytes.Equal(a, b) {
			t.Fatalf("%q -> %q parses as %s, want %s", s, nl.String(), b, a)
		}
	})
}
