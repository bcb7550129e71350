package imagestore_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/tests/testutils"
)

func newStore(t *testing.T) *imagestore.Store {
	t.Helper()
	s, err := imagestore.Open(filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// image is a test ACI written to a file, with the ID the store must give it.
type image struct {
	path string
	key  string
	aci  testutils.ACI
}

// keyOf is the rkt image ID of an ACI: the first half of the SHA-512 of
// its uncompressed tar.
func keyOf(t *testing.T, a testutils.ACI) string {
	t.Helper()
	a.Compression = testutils.CompressionNone
	plain, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(plain)
	return "sha512-" + hex.EncodeToString(sum[:32])
}

func writeImage(t *testing.T, a testutils.ACI) image {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.aci")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := a.WriteFile(f.Name()); err != nil {
		t.Fatal(err)
	}
	return image{path: f.Name(), key: keyOf(t, a), aci: a}
}

// simpleACI is a small image with a file under implicit parents and a
// hardlink to it.
func simpleACI(name, version, body string) testutils.ACI {
	return testutils.ACI{
		Image: testutils.Image{Name: name, Labels: map[string]string{"version": version}},
		Entries: []testutils.Entry{
			testutils.Dir("etc", 0o755),
			testutils.File("etc/body", 0o644, body),
			testutils.File("usr/share/doc/readme", 0o444, "implicit parents"),
			testutils.Hardlink("usr/share/doc/readme-hardlink", "usr/share/doc/readme"),
			testutils.Symlink("etc/link", "body"),
		},
		Compression: testutils.CompressionGzip,
	}
}

// importFile stages and commits one image file.
func importFile(t *testing.T, s *imagestore.Store, path string, opts imagestore.ImportOptions) *imagestore.ImageInfo {
	t.Helper()
	ctx := context.Background()
	st, err := s.Stage(ctx, path, opts)
	if err != nil {
		t.Fatalf("Stage(%s): %v", path, err)
	}
	if err := st.Commit(ctx); err != nil {
		t.Fatalf("Commit(%s): %v", path, err)
	}
	info, err := s.Get(st.Key)
	if err != nil {
		t.Fatalf("Get(%s) after commit: %v", st.Key, err)
	}
	return info
}

// snapshot lists every path below the store with its type and size, except
// lock files (never removed by design) and the index file's size.
func snapshot(t *testing.T, s *imagestore.Store) map[string]string {
	t.Helper()
	return testutils.SnapshotTree(t, s.Dir(), "locks", "db/index.db")
}

func diffSnapshots(before, after map[string]string) []string {
	return testutils.DiffSnapshots(before, after)
}

func listKeys(t *testing.T, s *imagestore.Store) []string {
	t.Helper()
	l, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, i := range l {
		keys = append(keys, i.Key)
	}
	sort.Strings(keys)
	return keys
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
