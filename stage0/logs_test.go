package stage0

import (
	"slices"
	"testing"
)

// TestRunArgsLogFlags: the log flags go only to stage1s of interface
// version 7 and later.
func TestRunArgsLogFlags(t *testing.T) {
	o := RunOptions{LogSize: 65536, NoLogPrefix: true}
	got := o.args("/init", 7, "u")
	if !slices.Contains(got, "--log-size=65536") || !slices.Contains(got, "--log-prefix=false") {
		t.Errorf("version 7: %q", got)
	}
	if got := o.args("/init", 6, "u"); len(got) != 2 {
		t.Errorf("version 6: %q, want no log flags", got)
	}
	if got := (&RunOptions{}).args("/init", 7, "u"); len(got) != 2 {
		t.Errorf("defaults: %q, want no log flags", got)
	}
}
