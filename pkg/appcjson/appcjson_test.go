package appcjson

import (
	"errors"
	"strings"
	"testing"
	"time"

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

// appc's quantity parser computes a number with as many digits as the
// exponent says: such quantities are refused before it runs, in every
// document kind, and ordinary quantities still decode.
func TestHugeQuantityExponent(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, doc := range []struct {
			v    any
			json string
		}{
			{&types.Isolators{}, `[{"name":"resource/memory","value":{"limit":"18446E44073714794496"}}]`},
			{&types.Isolators{}, `[{"name":"resource/cpu","value":{"request":"1e-99999999"}}]`},
			{&schema.ImageManifest{}, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"resource/memory","value":{"limit":"1E44073714794496"}}]}}`},
			{&types.Isolators{}, `[{"name":"resource/memory","value":{"limit":"` + strings.Repeat("9", 100) + `"}}]`},
		} {
			if err := Unmarshal([]byte(doc.json), doc.v); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: err = %v, want ErrMalformed", doc.json, err)
			}
		}
		var isos types.Isolators
		if err := Unmarshal([]byte(`[{"name":"resource/memory","value":{"limit":"128M","request":"1e3"}},{"name":"resource/cpu","value":{"limit":"2Ei"}}]`), &isos); err != nil || len(isos) != 2 {
			t.Errorf("ordinary quantities: %v, %d isolators", err, len(isos))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("decoding a quantity with a huge exponent did not return within 5 s")
	}
}
