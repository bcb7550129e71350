package imagestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/tests/testutils"
)

func TestImportAndLookups(t *testing.T) {
	s := newStore(t)
	a := simpleACI("example.com/app", "1.0", "body v1")
	img := writeImage(t, a)
	info := importFile(t, s, img.path, imagestore.ImportOptions{Source: img.path})

	if info.Key != img.key {
		t.Errorf("key %s, want %s (SHA-512 of the uncompressed tar, first 256 bits)", info.Key, img.key)
	}
	if info.Name != "example.com/app" || info.Labels["version"] != "1.0" || info.Labels["os"] != "linux" {
		t.Errorf("name/labels %s %v", info.Name, info.Labels)
	}
	if info.Compression != aci.Gzip || info.Source != img.path {
		t.Errorf("compression %s, source %q", info.Compression, info.Source)
	}
	fileBytes, _ := os.ReadFile(img.path)
	plain := a
	plain.Compression = testutils.CompressionNone
	plainBytes, _ := plain.Bytes()
	if info.Size != int64(len(fileBytes)) || info.UnpackedSize != int64(len(plainBytes)) {
		t.Errorf("size %d, unpacked %d; want %d, %d", info.Size, info.UnpackedSize, len(fileBytes), len(plainBytes))
	}
	if info.ImportTime.IsZero() || time.Since(info.ImportTime) > time.Minute {
		t.Errorf("import time %v", info.ImportTime)
	}
	// The blob is the image exactly as fetched.
	if blob, err := os.ReadFile(s.BlobPath(info.Key)); err != nil || !bytes.Equal(blob, fileBytes) {
		t.Errorf("blob differs from the imported file (%v)", err)
	}
	rootfs, err := s.TreeRootfs(info)
	if err != nil {
		t.Fatalf("TreeRootfs: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/body")); err != nil || string(b) != "body v1" {
		t.Errorf("tree etc/body = %q, %v", b, err)
	}
	a1, err1 := os.Stat(filepath.Join(rootfs, "usr/share/doc/readme"))
	a2, err2 := os.Stat(filepath.Join(rootfs, "usr/share/doc/readme-hardlink"))
	if err1 != nil || err2 != nil || !os.SameFile(a1, a2) {
		t.Errorf("the hardlink is not a link to its target (%v, %v)", err1, err2)
	}
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("VerifyTree right after import: %v", err)
	}
	if ents := dirNames(t, s.TmpDir()); len(ents) != 0 {
		t.Errorf("tmp/ not empty after import: %v", ents)
	}

	short := imagestore.ShortKey(info.Key)
	if len(short) != len("sha512-")+12 || !strings.HasPrefix(info.Key, short) {
		t.Errorf("ShortKey = %q", short)
	}
	for _, ref := range []string{info.Key, short, "sha512-" + strings.ToUpper(short[7:]), "example.com/app", "example.com/app:1.0",
		"example.com/app,os=linux", info.Key[:9]} {
		got, err := s.Resolve(ref)
		if err != nil || got.Key != info.Key {
			t.Errorf("Resolve(%q) = %v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"example.com/app:2.0", "example.com/other", "example.com/app,os=darwin"} {
		if _, err := s.Resolve(ref); !errors.Is(err, imagestore.ErrNotFound) {
			t.Errorf("Resolve(%q): %v, want ErrNotFound", ref, err)
		}
	}
	other := "sha512-" + strings.Repeat("0", 64)
	if info.Key[7] == '0' {
		other = "sha512-" + strings.Repeat("f", 64)
	}
	for _, ref := range []string{other, other[:10]} {
		if _, err := s.Resolve(ref); !errors.Is(err, imagestore.ErrNotFound) {
			t.Errorf("Resolve(%q): %v, want ErrNotFound", ref, err)
		}
	}
	for _, ref := range []string{"sha512-", "sha512-a", "sha512-xyz0"} {
		if _, err := s.ResolveKey(ref); err == nil || errors.Is(err, imagestore.ErrNotFound) {
			t.Errorf("ResolveKey(%q): %v, want a malformed-ID error", ref, err)
		}
	}

	// The same tar with another compression is the same image.
	for _, c := range []testutils.Compression{testutils.CompressionNone, testutils.CompressionXz,
		testutils.CompressionZstd, testutils.CompressionBzip2} {
		b := a
		b.Compression = c
		again := writeImage(t, b)
		got := importFile(t, s, again.path, imagestore.ImportOptions{})
		if got.Key != info.Key {
			t.Errorf("%s copy has key %s, want %s", c, got.Key, info.Key)
		}
		if !got.ImportTime.Equal(info.ImportTime) {
			t.Errorf("re-import changed the import time")
		}
	}
	if keys := listKeys(t, s); len(keys) != 1 {
		t.Errorf("List after re-imports: %v, want one image", keys)
	}
	if n := dirNames(t, filepath.Join(s.Dir(), "tree")); len(n) != 1 {
		t.Errorf("trees: %v, want one", n)
	}
	if ents := dirNames(t, s.TmpDir()); len(ents) != 0 {
		t.Errorf("tmp/ not empty after re-imports: %v", ents)
	}
}

// TestResolveAmbiguous makes two images whose IDs share their first two hex
// digits: the short prefix must be refused with both candidates listed.
func TestResolveAmbiguous(t *testing.T) {
	s := newStore(t)
	seen := map[string]image{}
	var pair [2]image
	for i := 0; ; i++ {
		if i > 2000 {
			t.Fatal("no two IDs with a common 2-digit prefix in 2000 images")
		}
		a := simpleACI("example.com/amb", fmt.Sprint(i), fmt.Sprint("body ", i))
		a.Compression = testutils.CompressionNone
		key := keyOf(t, a)
		if prev, ok := seen[key[:9]]; ok {
			pair = [2]image{prev, writeImage(t, a)}
			break
		}
		seen[key[:9]] = image{aci: a, key: key}
	}
	pair[0] = writeImage(t, pair[0].aci)
	for _, img := range pair {
		importFile(t, s, img.path, imagestore.ImportOptions{})
	}
	prefix := pair[0].key[:9]
	_, err := s.ResolveKey(prefix)
	if !errors.Is(err, imagestore.ErrAmbiguous) {
		t.Fatalf("ResolveKey(%s): %v, want ErrAmbiguous", prefix, err)
	}
	for _, img := range pair {
		if !strings.Contains(err.Error(), img.key[:13]) {
			t.Errorf("ambiguity error %q does not list candidate %s", err, img.key[:13])
		}
	}
	// A longer prefix that tells them apart resolves.
	n := 9
	for pair[0].key[:n] == pair[1].key[:n] {
		n++
	}
	for _, img := range pair {
		if got, err := s.ResolveKey(img.key[:n]); err != nil || got != img.key {
			t.Errorf("ResolveKey(%s) = %s, %v; want %s", img.key[:n], got, err, img.key)
		}
	}
	// By name, the most recent import wins.
	got, err := s.Resolve("example.com/amb")
	if err != nil || got.Key != pair[1].key {
		t.Errorf("Resolve by name = %v, %v; want the latest import %s", got, err, pair[1].key)
	}
}

func TestStageExpectMismatch(t *testing.T) {
	s := newStore(t)
	importFile(t, s, writeImage(t, simpleACI("example.com/seed", "1", "x")).path, imagestore.ImportOptions{})
	img := writeImage(t, simpleACI("example.com/app", "1.0", "x"))
	before := snapshot(t, s)
	for _, ref := range []string{"example.com/other", "example.com/app:2.0", "example.com/app,channel=beta"} {
		nl, err := aci.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stage(context.Background(), img.path, imagestore.ImportOptions{Expect: nl})
		if err == nil {
			st.Abort()
			t.Errorf("Stage expecting %s accepted example.com/app:1.0", ref)
			continue
		}
		if !errors.Is(err, aci.ErrInvalid) {
			t.Errorf("expecting %s: %v is not ErrInvalid", ref, err)
		}
	}
	if d := diffSnapshots(before, snapshot(t, s)); len(d) > 0 {
		t.Errorf("refused stages changed the store: %v", d)
	}
	nl, _ := aci.ParseRef("example.com/app:1.0")
	importFile(t, s, img.path, imagestore.ImportOptions{Expect: nl})
}

func TestStageMove(t *testing.T) {
	s := newStore(t)
	img := writeImage(t, simpleACI("example.com/app", "1.0", "x"))
	dl := filepath.Join(s.TmpDir(), "download")
	data, _ := os.ReadFile(img.path)
	if err := os.WriteFile(dl, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info := importFile(t, s, dl, imagestore.ImportOptions{Move: true})
	if _, err := os.Stat(dl); !os.IsNotExist(err) {
		t.Errorf("moved source still exists (%v)", err)
	}
	if blob, _ := os.ReadFile(s.BlobPath(info.Key)); !bytes.Equal(blob, data) {
		t.Error("moved blob differs from the download")
	}
}

func TestAbortAfterStage(t *testing.T) {
	s := newStore(t)
	before := snapshot(t, s)
	st, err := s.Stage(context.Background(), writeImage(t, simpleACI("example.com/app", "1", "x")).path, imagestore.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.BlobFile()); err != nil {
		t.Errorf("staged blob: %v", err)
	}
	if keys := listKeys(t, s); len(keys) != 0 {
		t.Errorf("a staged image is listed: %v", keys)
	}
	st.Abort()
	st.Abort()
	if d := diffSnapshots(before, snapshot(t, s)); len(d) > 0 {
		t.Errorf("Abort left: %v", d)
	}
}

func TestConcurrentImports(t *testing.T) {
	s := newStore(t)
	same := writeImage(t, simpleACI("example.com/same", "1", "same"))
	var imgs []image
	for i := 0; i < 8; i++ {
		imgs = append(imgs, same, writeImage(t, simpleACI("example.com/diff", fmt.Sprint(i), fmt.Sprint("diff ", i))))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, len(imgs))
	for _, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.Stage(ctx, img.path, imagestore.ImportOptions{})
			if err == nil {
				err = st.Commit(ctx)
			}
			if err == nil && st.Key != img.key {
				err = fmt.Errorf("key %s, want %s", st.Key, img.key)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	keys := listKeys(t, s)
	if len(keys) != 9 {
		t.Fatalf("%d images listed, want 9: %v", len(keys), keys)
	}
	for _, k := range keys {
		info, err := s.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyTree(info); err != nil {
			t.Errorf("VerifyTree(%s): %v", k, err)
		}
	}
	if n := dirNames(t, filepath.Join(s.Dir(), "tree")); len(n) != 9 {
		t.Errorf("%d trees, want 9", len(n))
	}
	if ents := dirNames(t, s.TmpDir()); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
}

func TestRemove(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	keep := importFile(t, s, writeImage(t, simpleACI("example.com/keep", "1", "keep")).path, imagestore.ImportOptions{})
	before := snapshot(t, s)
	info := importFile(t, s, writeImage(t, simpleACI("example.com/rm", "1", "rm")).path, imagestore.ImportOptions{})
	if err := s.PutRemote(&imagestore.Remote{URL: "https://127.0.0.1/rm.aci", BlobKey: info.Key, DownloadTime: time.Now()}); err != nil {
		t.Fatal(err)
	}

	// A pod using the tree blocks removal.
	use, err := s.UseTree(ctx, info.TreeID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, info.Key); !errors.Is(err, imagestore.ErrInUse) {
		t.Errorf("Remove of an image in use: %v, want ErrInUse", err)
	}
	if _, err := s.Get(info.Key); err != nil {
		t.Errorf("image in use was removed from the index: %v", err)
	}
	use.Close()

	if err := s.Remove(ctx, info.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := s.Get(info.Key); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("Get after Remove: %v, want ErrNotFound", err)
	}
	if r, err := s.GetRemote("https://127.0.0.1/rm.aci"); err != nil || r != nil {
		t.Errorf("remote record survives its image: %+v, %v", r, err)
	}
	for _, d := range diffSnapshots(before, snapshot(t, s)) {
		// The blob fan-out directory may stay, empty.
		if !strings.HasPrefix(d, "added blob/sha512/") || !strings.HasSuffix(d, "(d---------)") {
			t.Errorf("Remove left: %s", d)
		}
	}
	if err := s.Remove(ctx, info.Key); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	if err := s.VerifyTree(keep); err != nil {
		t.Errorf("the other image suffered: %v", err)
	}
}

func TestGC(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a := importFile(t, s, writeImage(t, simpleACI("example.com/a", "1", "a")).path, imagestore.ImportOptions{})
	b := importFile(t, s, writeImage(t, simpleACI("example.com/b", "1", "b")).path, imagestore.ImportOptions{})

	rep, err := s.GC(ctx, time.Hour)
	if err != nil || len(rep.Removed)+rep.Trees+rep.Blobs != 0 {
		t.Fatalf("GC of fresh images: %+v, %v; want nothing removed", rep, err)
	}
	// Leftovers of killed processes.
	orphanKey := "sha512-" + strings.Repeat("ab", 32)
	orphanTree := filepath.Join(s.Dir(), "tree", orphanKey)
	os.MkdirAll(filepath.Join(orphanTree, "rootfs"), 0o755)
	os.MkdirAll(filepath.Dir(s.BlobPath(orphanKey)), 0o755)
	os.WriteFile(s.BlobPath(orphanKey), []byte("orphan"), 0o640)
	deadWork := filepath.Join(s.TmpDir(), "import-dead")
	os.MkdirAll(filepath.Join(deadWork, "tree"), 0o700)
	oldPart := filepath.Join(s.TmpDir(), "dl-old.part")
	freshPart := filepath.Join(s.TmpDir(), "dl-fresh.part")
	os.WriteFile(oldPart, []byte("x"), 0o600)
	os.WriteFile(freshPart, []byte("x"), 0o600)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(oldPart, old, old)
	// A live import's work area is locked.
	live, err := s.Stage(ctx, writeImage(t, simpleACI("example.com/live", "1", "live")).path, imagestore.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()

	inUse, err := s.UseTree(ctx, b.TreeID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = s.GC(ctx, 0)
	inUse.Close()
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0] != a.Key {
		t.Errorf("GC removed %v, want only %s", rep.Removed, a.Key)
	}
	if len(rep.Kept) != 1 || rep.Kept[0] != b.Key {
		t.Errorf("GC kept %v, want %s (in use)", rep.Kept, b.Key)
	}
	if rep.Trees != 1 || rep.Blobs != 1 {
		t.Errorf("GC removed %d trees and %d blobs, want the orphan of each", rep.Trees, rep.Blobs)
	}
	for _, p := range []string{orphanTree, s.BlobPath(orphanKey), deadWork, oldPart, s.BlobPath(a.Key), s.TreePath(a.TreeID)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survives GC (%v)", p, err)
		}
	}
	for _, p := range []string{freshPart, live.BlobFile(), s.BlobPath(b.Key), s.TreePath(b.TreeID)} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("GC removed %s: %v", p, err)
		}
	}
	if err := live.Commit(ctx); err != nil {
		t.Errorf("committing the import that ran during GC: %v", err)
	}
}

func TestTouch(t *testing.T) {
	s := newStore(t)
	info := importFile(t, s, writeImage(t, simpleACI("example.com/a", "1", "a")).path, imagestore.ImportOptions{})
	if !info.LastUsed.IsZero() {
		t.Errorf("fresh image has last-used %v", info.LastUsed)
	}
	if err := s.Touch(info.Key); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(info.Key)
	if time.Since(got.LastUsed) > time.Minute || !got.ImportTime.Equal(info.ImportTime) {
		t.Errorf("after Touch: last used %v, import %v (was %v)", got.LastUsed, got.ImportTime, info.ImportTime)
	}
}

func TestRemotes(t *testing.T) {
	s := newStore(t)
	if r, err := s.GetRemote("https://127.0.0.1/x"); r != nil || err != nil {
		t.Errorf("GetRemote on an empty store: %v, %v", r, err)
	}
	want := imagestore.Remote{URL: "https://127.0.0.1/x", ETag: `"v1"`, MaxAge: 60, DownloadTime: time.Now().Round(0).UTC(), BlobKey: "sha512-00"}
	if err := s.PutRemote(&want); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRemote(want.URL)
	if err != nil || got == nil || got.ETag != want.ETag || got.MaxAge != 60 || !got.DownloadTime.Equal(want.DownloadTime) || got.BlobKey != want.BlobKey {
		t.Errorf("GetRemote = %+v, %v; want %+v", got, err, want)
	}
}

func TestEmptyStoreReads(t *testing.T) {
	s := imagestore.OpenReadOnly(filepath.Join(t.TempDir(), "missing"))
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Errorf("List of a missing store: %v, %v", l, err)
	}
	if _, err := s.Resolve("example.com/x"); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("Resolve in a missing store: %v", err)
	}
	if _, err := s.ResolveKey("sha512-ab"); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("ResolveKey in a missing store: %v", err)
	}
}

// setSchema rewrites the index's schema version as another rkt would.
func setSchema(t *testing.T, s *imagestore.Store, v string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(s.Dir(), "db", "index.db"), 0o640, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if v == "" {
			return tx.DeleteBucket([]byte("meta"))
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaVersion(t *testing.T) {
	s := newStore(t)
	info := importFile(t, s, writeImage(t, simpleACI("example.com/a", "1", "a")).path, imagestore.ImportOptions{})

	setSchema(t, s, fmt.Sprint(imagestore.SchemaVersion+1))
	if _, err := s.List(); err == nil || !strings.Contains(err.Error(), "newer rkt") {
		t.Errorf("List of a newer store: %v, want a 'newer rkt' error", err)
	}
	if err := s.Touch(info.Key); err == nil {
		t.Error("a write to a newer store succeeded")
	}

	// An older (here: unversioned) index is migrated by the next write.
	setSchema(t, s, "")
	if _, err := s.List(); err == nil || !strings.Contains(err.Error(), "migrat") {
		t.Errorf("List of an old store: %v, want a migration error", err)
	}
	if err := s.Touch(info.Key); err != nil {
		t.Fatalf("Touch (migrating): %v", err)
	}
	if keys := listKeys(t, s); len(keys) != 1 || keys[0] != info.Key {
		t.Errorf("after migration: %v", keys)
	}
}

// TestFirstWriteRacesReaders: processes reading a store whose index is
// being created by its first writer must see an empty store, not fail.
// (Goroutines stand in for processes: bbolt's flock is per open file.)
func TestFirstWriteRacesReaders(t *testing.T) {
	for round := 0; round < 30; round++ {
		s := newStore(t)
		start := make(chan struct{})
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var err error
				if i%2 == 0 {
					err = s.PutRemote(&imagestore.Remote{URL: fmt.Sprintf("https://127.0.0.1/%d", i), DownloadTime: time.Now()})
				} else {
					_, err = s.List()
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
