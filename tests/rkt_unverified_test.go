package tests

import (
	"strings"
	"testing"
)

// TestUnverifiedImageRefusedWithoutOption: an image fetched once with
// --insecure-options=image is stored unverified; named later without the
// option (by ID, short ID, name or its file) it is refused with exit 254,
// no ID is printed and the store is unchanged; with the option the same
// references resolve to it.
func TestUnverifiedImageRefusedWithoutOption(t *testing.T) {
	c := newImageCtx(t)
	p := writeACI(t, t.TempDir(), "app.aci", smallACI("example.com/app", "1", "x"))
	ids := fetchOK(t, c, "--full", p)
	if len(ids) != 1 {
		t.Fatalf("fetch printed %v", ids)
	}
	id := ids[0]
	before := captureStore(t, c)
	for _, ref := range []string{id, id[:19], "example.com/app", "example.com/app:1", p} {
		for _, policy := range []string{"never", "new"} {
			args := []string{"fetch", "--full", "--pull-policy=" + policy, ref}
			r := c.Run(args...)
			if r.Exit != 254 || strings.Contains(r.Stdout, id) {
				t.Errorf("unverified image without --insecure-options=image: %s", describeResult(args, r))
			} else if !strings.Contains(r.Stderr, "without a signature check") {
				t.Errorf("refusal does not say the image was stored without a signature check: %s", describeResult(args, r))
			}
			if got := fetchOK(t, c, "--full", "--pull-policy="+policy, ref); len(got) != 1 || got[0] != id {
				t.Errorf("fetch --pull-policy=%s %s with --insecure-options=image printed %v, want %s", policy, ref, got, id)
			}
		}
	}
	assertStoreUnchanged(t, c, before)
}
