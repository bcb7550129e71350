package imagestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/tests/testutils"
)

// TestCommitSyncsBeforePublishing records the calls that make a commit
// durable and checks their order: the staged data is synced before the
// first rename that puts it in view, each rename is followed by a sync of
// the directory it renamed into, and the index row naming the image is
// written only after all of that. A crash at any point then leaves either
// no image or a complete one.
func TestCommitSyncsBeforePublishing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "img.aci")
	a := testutils.ACI{Image: testutils.Image{Name: "example.com/durable"},
		Entries: []testutils.Entry{testutils.File("rootfs/etc/data", 0o644, "data")}}
	if err := a.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := s.Stage(ctx, p, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Abort()

	work := st.work // Commit clears it
	var ops []string
	indexed := func() string {
		if _, err := s.Get(st.Key); err == nil {
			return " (index row present)"
		} else if !errors.Is(err, ErrNotFound) {
			t.Errorf("Get during Commit: %v", err)
		}
		return ""
	}
	saved := durable
	t.Cleanup(func() { durable = saved })
	rel := func(p string) string {
		if r, err := filepath.Rel(s.Dir(), p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	durable.syncFS = func(p string) error {
		ops = append(ops, "syncfs "+rel(p)+indexed())
		return saved.syncFS(p)
	}
	durable.fsync = func(p string) error {
		ops = append(ops, "fsync "+rel(p)+indexed())
		return saved.fsync(p)
	}
	durable.rename = func(from, to string) error {
		ops = append(ops, "rename "+rel(to)+indexed())
		return saved.rename(from, to)
	}
	if err := st.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(st.Key); err != nil {
		t.Fatalf("after Commit: %v", err)
	}
	blob, tree := rel(s.blobPath(st.Key)), rel(s.TreePath(st.Key))
	want := []string{
		"syncfs " + rel(work),
		"rename " + blob,
		"fsync " + filepath.Dir(blob),
		"rename " + tree,
		"fsync " + filepath.Dir(tree),
	}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("Commit did\n\t%s\nwant\n\t%s", strings.Join(ops, "\n\t"), strings.Join(want, "\n\t"))
	}
	if _, err := os.Stat(filepath.Join(s.TreePath(st.Key), markerFile)); err != nil {
		t.Errorf("committed tree has no completion marker: %v", err)
	}
}
