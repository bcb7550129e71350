package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/imagestore/storetest"
)

// TestImageCommandsOnLayeredImages: image list, verify, rm and gc work on
// layered records (built here from two layer tarballs sharing a base, as
// an OCI fetch will store them), next to an ACI: rm of one image keeps the
// shared layer, gc with no grace period removes the rest, and the ACI
// commands refuse a layered image, saying so.
func TestImageCommandsOnLayeredImages(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	fetchOK(t, c, writeACI(t, dir, "seed.aci", smallACI("example.com/seed", "1", "seed")))
	s, err := imagestore.Open(filepath.Join(c.Dir, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	base := storetest.NewLayer(t, storetest.Dir("etc"), storetest.File("etc/os-release", "base"))
	a := storetest.PutImage(t, s, "example.com/layered-a", base, storetest.NewLayer(t, storetest.File("a", "a"), storetest.Whiteout("etc/.wh.os-release")))
	b := storetest.PutImage(t, s, "example.com/layered-b", base, storetest.NewLayer(t, storetest.File("b", "b")))

	_, imgs := listImages(t, c)
	found := map[string]bool{}
	for _, i := range imgs {
		found[i.ID] = true
		wantType, wantLayers := imagestore.MediaTypeACI, 0
		if i.ID == a.Key || i.ID == b.Key {
			wantType, wantLayers = a.MediaType, 2
		}
		if i.MediaType != wantType || i.Layers != wantLayers {
			t.Errorf("image list: %s has media type %q and %d layers, want %q and %d", i.Name, i.MediaType, i.Layers, wantType, wantLayers)
		}
		if i.Size <= 0 {
			t.Errorf("image list: %s has size %d", i.Name, i.Size)
		}
	}
	if len(imgs) != 3 || !found[a.Key] || !found[b.Key] {
		t.Fatalf("image list: %+v, want the seed and both layered images", imgs)
	}
	if out := c.MustRun("image", "verify", imagestore.ShortKey(a.Key), "example.com/layered-b"); strings.Count(out, ": ok") != 2 {
		t.Errorf("image verify printed %q", out)
	}
	dirs, _ := s.LowerDirs(b)
	if err := os.WriteFile(filepath.Join(dirs[0], "b"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.MustFail(254, "digest", "image", "verify", "example.com/layered-b")
	c.MustFail(254, "layered", "image", "export", "example.com/layered-a", filepath.Join(dir, "out.aci"))
	c.MustFail(254, "layers", "image", "extract", "example.com/layered-a", filepath.Join(dir, "out"))
	r := c.MustFail(254, "not an ACI", "run", "--insecure-options=image", "--net=none", "example.com/layered-a")
	if left, _ := filepath.Glob(filepath.Join(c.Dir, "pods", "*", "*")); len(left) > 0 {
		t.Errorf("rkt run of a layered image left pods: %v (%s)", left, r.Stderr)
	}

	if out := c.MustRun("image", "rm", "example.com/layered-a"); !strings.Contains(out, "successfully removed image "+a.Key) {
		t.Errorf("image rm printed %q", out)
	}
	if s.HasLayer(a.Layers[1].DiffID) || !s.HasLayer(base.Desc.DiffID) {
		t.Errorf("after rm of a: its own layer present %v, shared layer present %v; want false, true",
			s.HasLayer(a.Layers[1].DiffID), s.HasLayer(base.Desc.DiffID))
	}
	c.MustRun("image", "gc", "--grace-period=0s")
	_, imgs = listImages(t, c)
	if len(imgs) != 0 || s.HasLayer(base.Desc.DiffID) {
		t.Errorf("after gc: %d images, shared layer present %v", len(imgs), s.HasLayer(base.Desc.DiffID))
	}
	for _, sub := range []string{"tree", "blob/sha256"} {
		ents, _ := os.ReadDir(filepath.Join(c.Dir, "cas", sub))
		for _, e := range ents {
			if sub == "tree" || len(dirNamesIn(t, filepath.Join(c.Dir, "cas", sub, e.Name()))) > 0 {
				t.Errorf("left after gc: cas/%s/%s", sub, e.Name())
			}
		}
	}
}

func dirNamesIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
