package appcjson

import (
	"errors"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// appc's Isolator.UnmarshalJSON dereferences a missing "value".
func TestIsolatorWithoutValue(t *testing.T) {
	var isos types.Isolators
	if err := Unmarshal([]byte(`[{"name":"resource/memory"}]`), &isos); !errors.Is(err, ErrMalformed) {
		t.Errorf("isolators: err = %v, want ErrMalformed", err)
	}
	var m schema.ImageManifest
	im := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"resource/memory"}]}}`
	if err := Unmarshal([]byte(im), &m); !errors.Is(err, ErrMalformed) {
		t.Errorf("image manifest: err = %v, want ErrMalformed", err)
	}
	if err := Unmarshal([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x"}`), &m); err != nil || m.Name != "example.com/x" {
		t.Errorf("valid manifest: %v, %q", err, m.Name)
	}
}
