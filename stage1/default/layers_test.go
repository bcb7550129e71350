package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/imagestore/storetest"
	"github.com/rkt/rkt/stage1/stage1test"
)

// TestLayeredImageStacks runs pods on the trees of a two-layer image from
// the store, stacked top first over the inspect tree as stage0 writes
// them: the top layer's file wins, its whiteout hides the lower file, its
// opaque directory hides the lower directory's contents, and what only the
// bottom layer has shows through.
func TestLayeredImageStacks(t *testing.T) {
	requireRoot(t)
	s, err := imagestore.Open(filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatal(err)
	}
	bottom := storetest.NewLayer(t, storetest.Dir("etc"), storetest.File("etc/layered", "bottom"),
		storetest.File("etc/gone", "gone"), storetest.File("etc/bottom-only", "bottom-only"),
		storetest.Dir("opq"), storetest.File("opq/hidden", "hidden"))
	top := storetest.NewLayer(t, storetest.Dir("etc"), storetest.File("etc/layered", "top"),
		storetest.Whiteout("etc/.wh.gone"), storetest.Dir("opq"), storetest.Whiteout("opq/.wh..wh..opq"),
		storetest.File("opq/new", "new"))
	info := storetest.PutImage(t, s, "example.com/layered", bottom, top)
	lowers, err := s.LowerDirs(info)
	if err != nil {
		t.Fatal(err)
	}
	lowers = append(lowers, rootfs) // the inspect binary, as a base
	for _, c := range []struct {
		path, want string // want "" = the file must not exist
	}{
		{"/etc/layered", "top"},
		{"/etc/bottom-only", "bottom-only"},
		{"/opq/new", "new"},
		{"/etc/gone", ""},
		{"/opq/hidden", ""},
	} {
		a := stage1test.App{Name: "a", Exec: []string{"/inspect", "--read-file=" + c.path}, LowerDirs: lowers}
		p := stage1test.NewPod(t, binDir, stage1test.Spec{Apps: []stage1test.App{a}})
		r := p.RunPod("--net=host")
		if c.want == "" {
			if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "no such file") {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want it hidden by a whiteout", c.path, r.Code, r.Stdout, r.Stderr)
			}
			continue
		}
		if r.Code != 0 || !strings.Contains(r.Stdout, "<<<"+c.want+">>>") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", c.path, r.Code, r.Stdout, r.Stderr, c.want)
		}
	}
}
