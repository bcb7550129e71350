package imagestore_test

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/tests/testutils"
)

func TestVerifyTree(t *testing.T) {
	s := newStore(t)
	info := importFile(t, s, writeImage(t, simpleACI("example.com/a", "1", "original")).path, imagestore.ImportOptions{})
	if err := s.VerifyTree(info); err != nil {
		t.Fatalf("VerifyTree of a fresh image: %v", err)
	}
	rootfs, _ := s.TreeRootfs(info)
	body := filepath.Join(rootfs, "etc/body")
	fi, _ := os.Stat(body)
	if err := os.WriteFile(body, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(body, fi.ModTime(), fi.ModTime())
	err := s.VerifyTree(info)
	if !errors.Is(err, imagestore.ErrTreeInvalid) || !strings.Contains(err.Error(), imagestore.ShortKey(info.Key)) {
		t.Errorf("VerifyTree of a tampered tree: %v, want ErrTreeInvalid naming the image", err)
	}
	if err := os.WriteFile(body, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(body, fi.ModTime(), fi.ModTime())
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("VerifyTree after restoring: %v", err)
	}
	if err := os.Remove(filepath.Join(s.TreePath(info.TreeID), "rendered")); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyTree(info); !errors.Is(err, imagestore.ErrTreeInvalid) {
		t.Errorf("VerifyTree without completion marker: %v, want ErrTreeInvalid", err)
	}
	if _, err := s.TreeRootfs(info); err == nil {
		t.Error("TreeRootfs of a tree without completion marker succeeded")
	}
	// Fetching again repairs the tree.
	importFile(t, s, writeImage(t, simpleACI("example.com/a", "1", "original")).path, imagestore.ImportOptions{})
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("after re-import: %v", err)
	}
}

var t2001 = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func dated(e testutils.Entry) testutils.Entry {
	e.Header.ModTime = t2001
	return e
}

// renderPair imports base and top (top depends on base) and renders top.
func renderPair(t *testing.T, s *imagestore.Store, base, top testutils.ACI) (*imagestore.ImageInfo, string) {
	t.Helper()
	bi := importFile(t, s, writeImage(t, base).path, imagestore.ImportOptions{})
	ti := importFile(t, s, writeImage(t, top).path, imagestore.ImportOptions{})
	treeID, err := s.RenderDeps(context.Background(), ti.Key, []string{bi.Key, ti.Key})
	if err != nil {
		t.Fatalf("RenderDeps: %v", err)
	}
	info, err := s.Get(ti.Key)
	if err != nil {
		t.Fatal(err)
	}
	if info.TreeID != treeID || len(info.Deps) != 1 || info.Deps[0] != bi.Key {
		t.Errorf("index row after RenderDeps: tree %s deps %v; want %s, [%s]", info.TreeID, info.Deps, treeID, bi.Key)
	}
	return info, treeID
}

func TestRenderDeps(t *testing.T) {
	s := newStore(t)
	base := testutils.ACI{Image: testutils.Image{Name: "example.com/base"}, Entries: []testutils.Entry{
		dated(testutils.Dir("etc", 0o755)),
		testutils.File("etc/conf", 0o644, "base conf"),
		testutils.File("etc/base-only", 0o600, "base"),
		testutils.Dir("var", 0o755),
		testutils.File("var/file-then-dir", 0o644, "was a file"),
		testutils.Dir("opt/dir-then-file", 0o755),
		testutils.File("opt/dir-then-file/x", 0o644, "x"),
	}}
	top := testutils.ACI{Image: testutils.Image{Name: "example.com/top",
		Dependencies: []testutils.Dependency{{ImageName: "example.com/base"}}}, Entries: []testutils.Entry{
		testutils.Dir("etc", 0o700),
		testutils.File("etc/conf", 0o640, "top conf"),
		testutils.Dir("var/file-then-dir", 0o755),
		testutils.File("opt/dir-then-file", 0o644, "now a file"),
	}}
	info, treeID := renderPair(t, s, base, top)
	if !strings.HasPrefix(treeID, "deps-sha512-") {
		t.Errorf("tree ID %s", treeID)
	}
	rootfs, err := s.TreeRootfs(info)
	if err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(rootfs, rel))
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	if got := read("etc/conf"); got != "top conf" {
		t.Errorf("etc/conf = %q, want the top layer's", got)
	}
	if got := read("etc/base-only"); got != "base" {
		t.Errorf("etc/base-only = %q", got)
	}
	if got := read("opt/dir-then-file"); got != "now a file" {
		t.Errorf("opt/dir-then-file = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "var/file-then-dir")); err != nil || !fi.IsDir() {
		t.Errorf("var/file-then-dir is not a directory (%v)", err)
	}
	fi, err := os.Stat(filepath.Join(rootfs, "etc"))
	if err != nil || fi.Mode().Perm() != 0o700 || !fi.ModTime().Equal(testutils.FixedTime) {
		t.Errorf("etc: %v %v, %v; want the top layer's 0700 and time %v", fi.Mode(), fi.ModTime(), err, testutils.FixedTime)
	}
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("VerifyTree of a rendered tree: %v", err)
	}
	// The image's own tree is untouched.
	own, _ := os.ReadFile(filepath.Join(s.TreePath(info.Key), "rootfs/etc/conf"))
	if string(own) != "top conf" {
		t.Errorf("own tree etc/conf = %q", own)
	}
	if _, err := os.Stat(filepath.Join(s.TreePath(info.Key), "rootfs/etc/base-only")); !os.IsNotExist(err) {
		t.Errorf("rendering wrote into the image's own tree (%v)", err)
	}

	// Removing the image removes both its trees.
	if err := s.Remove(context.Background(), info.Key); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{info.Key, treeID} {
		if _, err := os.Stat(s.TreePath(id)); !os.IsNotExist(err) {
			t.Errorf("tree %s survives image removal (%v)", id, err)
		}
	}
}

func TestRenderPathWhitelist(t *testing.T) {
	s := newStore(t)
	base := testutils.ACI{Image: testutils.Image{Name: "example.com/base"}, Entries: []testutils.Entry{
		testutils.File("bin/sh", 0o755, "sh"),
		testutils.File("bin/rm", 0o755, "rm"),
		testutils.File("etc/passwd", 0o644, "root"),
		testutils.File("etc/shadow", 0o600, "secret"),
		testutils.Dir("keep/empty", 0o755),
		testutils.Dir("drop/empty", 0o755),
	}}
	top := testutils.ACI{Image: testutils.Image{Name: "example.com/top",
		Dependencies:  []testutils.Dependency{{ImageName: "example.com/base"}},
		PathWhitelist: []string{"/bin/sh", "/etc/passwd", "/app", "/keep/empty"}},
		Entries: []testutils.Entry{testutils.File("app", 0o755, "app")}}
	info, _ := renderPair(t, s, base, top)
	rootfs, err := s.TreeRootfs(info)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bin/sh", "etc/passwd", "app", "keep/empty"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("whitelisted %s missing: %v", p, err)
		}
	}
	for _, p := range []string{"bin/rm", "etc/shadow", "drop"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); !os.IsNotExist(err) {
			t.Errorf("%s survives the whitelist (%v)", p, err)
		}
	}
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("VerifyTree: %v", err)
	}
}

// TestRenderDoesNotWriteOutside: a lower layer has the directory x/sub, the
// upper layer replaces x with an absolute symlink (legal: it is resolved in
// the image root at run time). Rendering must not follow that symlink on
// the host, not even to set a directory's times.
func TestRenderDoesNotWriteOutside(t *testing.T) {
	s := newStore(t)
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	os.Chtimes(filepath.Join(outside, "sub"), now, now)
	before, _ := os.Stat(filepath.Join(outside, "sub"))

	base := testutils.ACI{Image: testutils.Image{Name: "example.com/base"}, Entries: []testutils.Entry{
		dated(testutils.Dir("x", 0o755)), dated(testutils.Dir("x/sub", 0o700)), testutils.File("x/sub/f", 0o644, "f"),
	}}
	top := testutils.ACI{Image: testutils.Image{Name: "example.com/top",
		Dependencies: []testutils.Dependency{{ImageName: "example.com/base"}}}, Entries: []testutils.Entry{
		{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "rootfs/x", Linkname: outside, Mode: 0o777}},
	}}
	info, _ := renderPair(t, s, base, top)
	after, err := os.Stat(filepath.Join(outside, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
		t.Errorf("rendering changed %s outside the store: mtime %v -> %v, mode %v -> %v",
			filepath.Join(outside, "sub"), before.ModTime(), after.ModTime(), before.Mode(), after.Mode())
	}
	if ents := dirNames(t, filepath.Join(outside, "sub")); len(ents) > 0 {
		t.Errorf("rendering wrote %v outside the store", ents)
	}
	rootfs, _ := s.TreeRootfs(info)
	if l, err := os.Readlink(filepath.Join(rootfs, "x")); err != nil || l != outside {
		t.Errorf("x in the rendered tree: %q, %v; want the top layer's symlink", l, err)
	}
}

// TestRenderReplacesLowerSymlink: a lower layer's symlink x -> outside and
// an upper layer's x/f: the upper file lands in the tree, in a directory
// that replaces the symlink, never outside.
func TestRenderReplacesLowerSymlink(t *testing.T) {
	s := newStore(t)
	outside := t.TempDir()
	base := testutils.ACI{Image: testutils.Image{Name: "example.com/base"}, Entries: []testutils.Entry{
		{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "rootfs/x", Linkname: outside, Mode: 0o777}},
	}}
	top := testutils.ACI{Image: testutils.Image{Name: "example.com/top",
		Dependencies: []testutils.Dependency{{ImageName: "example.com/base"}}}, Entries: []testutils.Entry{
		testutils.File("x/f", 0o644, "in the tree"),
	}}
	info, _ := renderPair(t, s, base, top)
	if ents := dirNames(t, outside); len(ents) > 0 {
		t.Errorf("rendering wrote %v outside the store", ents)
	}
	rootfs, _ := s.TreeRootfs(info)
	fi, err := os.Lstat(filepath.Join(rootfs, "x"))
	if err != nil || !fi.IsDir() {
		t.Errorf("x in the rendered tree: %v, %v; want a directory", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "x/f")); err != nil || string(b) != "in the tree" {
		t.Errorf("x/f = %q, %v", b, err)
	}
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("VerifyTree: %v", err)
	}
}
