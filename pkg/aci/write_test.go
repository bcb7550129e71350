package aci

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/testutil"
)

func TestWriteImageAppliesOverlayUpper(t *testing.T) {
	testutil.RequireRoot(t) // whiteouts and trusted.* xattrs
	lower, upper := t.TempDir(), t.TempDir()
	for _, f := range []string{"a", "b", "d/x", "e/keep"} {
		os.MkdirAll(filepath.Join(lower, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(lower, f), []byte("lower "+f), 0o644)
	}
	os.WriteFile(filepath.Join(upper, "c"), []byte("new"), 0o600)
	os.WriteFile(filepath.Join(upper, "a"), []byte("changed"), 0o644)
	if err := unix.Mknod(filepath.Join(upper, "b"), unix.S_IFCHR, 0); err != nil { // whiteout
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(upper, "d"), 0o755)
	if err := unix.Setxattr(filepath.Join(upper, "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(upper, "d", "y"), []byte("y"), 0o644)
	os.WriteFile(filepath.Join(upper, "e-file"), []byte("f"), 0o644)
	unix.Setxattr(filepath.Join(upper, "c"), "user.note", []byte("hi"), 0)

	var buf bytes.Buffer
	if err := WriteImage(&buf, []byte(`{"acKind":"ImageManifest"}`), Layer{Dir: lower}, Layer{Dir: upper, Overlay: true}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got[h.Name] = string(body)
		names = append(names, h.Name)
		if h.Name == "rootfs/c" && h.PAXRecords["SCHILY.xattr.user.note"] != "hi" {
			t.Errorf("xattr of c lost: %v", h.PAXRecords)
		}
		if h.Name == "rootfs/c" && h.Mode&0o777 != 0o600 {
			t.Errorf("mode of c = %o", h.Mode)
		}
	}
	if !sort.StringsAreSorted(names[1:]) || names[0] != "manifest" {
		t.Errorf("entries not manifest-first and sorted: %v", names)
	}
	want := map[string]string{"rootfs/a": "changed", "rootfs/c": "new", "rootfs/d/y": "y", "rootfs/e/keep": "lower e/keep", "rootfs/e-file": "f"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, gone := range []string{"rootfs/b", "rootfs/d/x"} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s should be deleted by the upper layer", gone)
		}
	}
}
