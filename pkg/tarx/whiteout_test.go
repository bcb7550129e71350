package tarx_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/tarx"
	"github.com/rkt/rkt/pkg/testutil"
)

func newLayer(t *testing.T, limits tarx.Limits) *fixture {
	t.Helper()
	f := newFixture(t, limits, true)
	f.ex.ConvertWhiteouts()
	return f
}

func isWhiteout(t *testing.T, p string) bool {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(p string) bool {
	var v [4]byte
	n, err := unix.Lgetxattr(p, tarx.OpaqueXattr, v[:])
	return err == nil && string(v[:n]) == "y"
}

// TestWhiteoutsBecomeOverlayWhiteouts: ".wh.NAME" is a 0/0 character
// device, ".wh..wh..opq" an opaque directory, and the tree digest that
// Verify recomputes covers both.
func TestWhiteoutsBecomeOverlayWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	f := newLayer(t, tarx.DefaultLimits)
	f.mustAdd(t, dir("etc", 0o755), file("etc/.wh.passwd", 0o644, ""), dir("var", 0o755),
		file("var/.wh..wh..opq", 0o644, ""), file("var/kept", 0o644, "k"),
		file("new/.wh.gone", 0o644, "")) // whiteout below an implicit parent
	digest, err := f.ex.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/passwd", "new/gone"} {
		if !isWhiteout(t, filepath.Join(f.root, p)) {
			t.Errorf("%s is not a 0/0 character device", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(f.root, "etc/.wh.passwd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the .wh. entry itself was extracted: %v", err)
	}
	if !isOpaque(filepath.Join(f.root, "var")) || isOpaque(filepath.Join(f.root, "etc")) {
		t.Errorf("opaque: var=%v etc=%v, want true false", isOpaque(filepath.Join(f.root, "var")), isOpaque(filepath.Join(f.root, "etc")))
	}
	if _, err := os.Lstat(filepath.Join(f.root, "var/.wh..wh..opq")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the opaque marker was extracted: %v", err)
	}
	got, err := tarx.Digest(f.root)
	if err != nil || got != digest {
		t.Fatalf("Digest = %s, %v; Finish gave %s", got, err, digest)
	}
	// Removing the opaque attribute is a change Verify sees.
	if err := unix.Lremovexattr(filepath.Join(f.root, "var"), tarx.OpaqueXattr); err != nil {
		t.Fatal(err)
	}
	if got, _ := tarx.Digest(f.root); got == digest {
		t.Error("Digest did not change when the opaque attribute was removed")
	}
}

// TestWhiteoutSameLayer: a whiteout applies to the layers below only, so
// an entry of the same layer wins whichever comes first, and a directory
// that was whited out in its own layer is opaque.
func TestWhiteoutSameLayer(t *testing.T) {
	testutil.RequireRoot(t)
	f := newLayer(t, tarx.DefaultLimits)
	f.mustAdd(t, file("a", 0o644, "a"), file(".wh.a", 0o644, ""), // file first
		file(".wh.b", 0o644, ""), file("b", 0o644, "b"), // whiteout first
		file(".wh.d", 0o644, ""), dir("d", 0o755), file("d/x", 0o644, "x"),
		file(".wh.e", 0o644, ""), file("e/y", 0o644, "y"), // below, implicit parent
		dir("c", 0o755), file(".wh.c", 0o644, ""))
	if _, err := f.ex.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "d/x", "e/y"} {
		if fi, err := os.Lstat(filepath.Join(f.root, p)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v, want the layer's own file", p, err)
		}
	}
	for _, d := range []string{"c", "d", "e"} {
		if !isOpaque(filepath.Join(f.root, d)) {
			t.Errorf("%s is not opaque", d)
		}
	}
}

func TestWhiteoutRefuses(t *testing.T) {
	testutil.RequireRoot(t)
	cases := []struct {
		name  string
		setup []entry
		bad   entry
	}{
		{"dotdot whiteout", nil, file("a/.wh...", 0o644, "")},
		{"dot whiteout", nil, file(".wh..", 0o644, "")},
		{"empty whiteout", nil, file("a/.wh.", 0o644, "")},
		{"climbing", nil, file("../.wh.etc", 0o644, "")},
		{"absolute", nil, file("/etc/.wh.passwd", 0o644, "")},
		{"below a whiteout", nil, file(".wh.a/b", 0o644, "")},
		{"below a symlink", []entry{symlink("l", "/etc")}, file("l/.wh.passwd", 0o644, "")},
		{"opaque below a symlink", []entry{symlink("l", "/etc")}, file("l/.wh..wh..opq", 0o644, "")},
		{"opaque in a file", []entry{file("f", 0o644, "")}, file("f/.wh..wh..opq", 0o644, "")},
		{"device", nil, entry{"null", tar.Header{Typeflag: tar.TypeChar, Mode: 0o666}, ""}},
		{"whiteout-shaped device", nil, entry{"wh", tar.Header{Typeflag: tar.TypeChar}, ""}},
		{"trusted xattr", nil, entry{"d", tar.Header{Typeflag: tar.TypeDir, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr." + tarx.OpaqueXattr: "y"}}, ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newLayer(t, tarx.DefaultLimits)
			f.mustAdd(t, c.setup...)
			if err := f.add(c.bad); !errors.Is(err, tarx.ErrUnsafe) {
				t.Fatalf("Add(%s) = %v, want ErrUnsafe", c.bad.name, err)
			}
			f.assertOutsideEmpty(t)
		})
	}
	// Whiteouts count as entries: a layer of whiteouts alone is bounded.
	f := newLayer(t, tarx.Limits{MaxEntries: 3})
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		err = f.add(file(".wh.f"+string(rune('a'+i)), 0o644, ""))
	}
	if !errors.Is(err, tarx.ErrUnsafe) {
		t.Fatalf("whiteouts past MaxEntries: %v, want ErrUnsafe", err)
	}
}

// TestWhiteoutsStackInOverlay mounts two layer trees as overlayfs lower
// directories: the upper layer's whiteout hides the lower file, its opaque
// directory hides the lower directory's contents.
func TestWhiteoutsStackInOverlay(t *testing.T) {
	testutil.RequireRoot(t)
	low := newLayer(t, tarx.DefaultLimits)
	low.mustAdd(t, file("gone", 0o644, "x"), file("kept", 0o644, "k"), dir("opq", 0o755),
		file("opq/hidden", 0o644, "h"), dir("merged", 0o755), file("merged/low", 0o644, "l"))
	top := newLayer(t, tarx.DefaultLimits)
	top.mustAdd(t, file(".wh.gone", 0o644, ""), file("opq/.wh..wh..opq", 0o644, ""), file("opq/new", 0o644, "n"),
		file("merged/top", 0o644, "t"))
	for _, f := range []*fixture{low, top} {
		if _, err := f.ex.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+top.root+":"+low.root); err != nil {
		t.Fatalf("mounting overlay: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	var got []string
	filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != mnt {
			rel, _ := filepath.Rel(mnt, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	want := []string{"kept", "merged", "merged/low", "merged/top", "opq", "opq/new"}
	if len(got) != len(want) {
		t.Fatalf("overlay shows %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("overlay shows %v, want %v", got, want)
		}
	}
}
