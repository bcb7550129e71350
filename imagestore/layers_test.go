package imagestore_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/imagestore/storetest"
)

// TestSchema1StoreOpens: a store written by the previous rkt (index
// schema 1, records without media type or layers) is read as it is, its
// records are ACI records with one tree, and the next write migrates it.
func TestSchema1StoreOpens(t *testing.T) {
	s := newStore(t)
	info := importFile(t, s, writeImage(t, simpleACI("example.com/old", "1", "o")).path, imagestore.ImportOptions{})
	// Rewrite the index as schema 1 wrote it: the row with the old fields only.
	db, err := bolt.Open(filepath.Join(s.Dir(), "db", "index.db"), 0o640, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		old := map[string]any{"id": info.Key, "name": info.Name, "labels": info.Labels, "manifest": info.Manifest,
			"compression": info.Compression, "size": info.Size, "unpacked_size": info.UnpackedSize,
			"tree_id": info.TreeID, "import_time": info.ImportTime, "last_used": info.LastUsed}
		data, _ := json.Marshal(old)
		if err := tx.Bucket([]byte("images")).Put([]byte(info.Key), data); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro := imagestore.OpenReadOnly(s.Dir())
	got, err := ro.Resolve("example.com/old")
	if err != nil {
		t.Fatalf("reading a schema 1 store: %v", err)
	}
	if !got.IsACI() || len(got.Trees()) != 1 || got.Trees()[0] != info.Key {
		t.Errorf("old record: ACI %v, trees %v; want an ACI with its one tree", got.IsACI(), got.Trees())
	}
	if dirs, err := ro.LowerDirs(got); err != nil || len(dirs) != 1 {
		t.Errorf("LowerDirs of an old record = %v, %v", dirs, err)
	}
	if err := s.Touch(info.Key); err != nil {
		t.Fatalf("a write to a schema 1 store: %v", err)
	}
	db, err = bolt.Open(filepath.Join(s.Dir(), "db", "index.db"), 0o640, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); v != "2" {
			t.Errorf("schema after a write: %q, want 2", v)
		}
		return nil
	})
}

// TestRemoveWhileAnotherImagesPodUsesSharedLayer: removing an image is not
// refused because a pod of another image holds a layer they share.
func TestRemoveWhileAnotherImagesPodUsesSharedLayer(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base := storetest.NewLayer(t, storetest.File("base", "b"))
	a := storetest.PutImage(t, s, "example.com/a", base, storetest.NewLayer(t, storetest.File("a", "a")))
	c := storetest.PutImage(t, s, "example.com/c", base, storetest.NewLayer(t, storetest.File("c", "c")))
	var held []string
	for _, tr := range c.Trees() {
		l, err := s.UseTree(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		held = append(held, tr)
	}
	if err := s.Remove(ctx, a.Key); err != nil {
		t.Fatalf("Remove(a) while a pod of c uses %v: %v", held, err)
	}
	if err := s.Remove(ctx, c.Key); err == nil {
		t.Fatal("Remove(c) succeeded while a pod uses its trees")
	}
	if !s.HasLayer(base.Desc.DiffID) {
		t.Fatal("the layer a pod uses was removed")
	}
}

// TestLowerDirsTopFirst: an ACI has its one tree; a layered record its
// layers' trees, last layer first (overlayfs lowerdir order).
func TestLowerDirsTopFirst(t *testing.T) {
	s := newStore(t)
	l1 := storetest.NewLayer(t, storetest.File("one", "1"))
	l2 := storetest.NewLayer(t, storetest.File("two", "2"))
	info := storetest.PutImage(t, s, "example.com/two", l1, l2)
	dirs, err := s.LowerDirs(info)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(s.TreePath(imagestore.LayerTreeID(l2.Desc.DiffID)), "rootfs"),
		filepath.Join(s.TreePath(imagestore.LayerTreeID(l1.Desc.DiffID)), "rootfs"),
	}
	if len(dirs) != 2 || dirs[0] != want[0] || dirs[1] != want[1] {
		t.Fatalf("LowerDirs = %v, want %v", dirs, want)
	}
	if _, err := s.TreeRootfs(info); err == nil {
		t.Error("TreeRootfs of a layered image gave one tree")
	}
	aci := importFile(t, s, writeImage(t, simpleACI("example.com/aci", "1", "x")).path, imagestore.ImportOptions{})
	if dirs, err := s.LowerDirs(aci); err != nil || len(dirs) != 1 || dirs[0] != filepath.Join(s.TreePath(aci.TreeID), "rootfs") {
		t.Fatalf("LowerDirs of an ACI = %v, %v", dirs, err)
	}
}
