// Package storetest is the conformance suite of imagestore.Interface, in
// the style of containerd's snapshotter test suite: every store
// implementation runs RunTests against a fresh store per test. Tests of
// whiteouts need root (overlayfs whiteouts are device nodes and trusted
// attributes) and run only with RKT_TEST_ROOT=1.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/testutil"
)

// NewStore returns a fresh, empty store for one test.
type NewStore func(t *testing.T) imagestore.Interface

// RunTests runs the suite.
func RunTests(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, imagestore.Interface)
	}{
		{"Blobs", testBlobs},
		{"HalfWrittenBlobInvisible", testHalfWrittenBlob},
		{"LayeredRecord", testLayeredRecord},
		{"SharedLayerExtractedOnce", testSharedLayer},
		{"LayerDigestsChecked", testLayerDigests},
		{"HalfWrittenLayerInvisible", testHalfWrittenLayer},
		{"HostileLayers", testHostileLayers},
		{"RecordNeedsItsContent", testRecordNeedsContent},
		{"RemoveKeepsSharedLayers", testRemoveShared},
		{"GC", testGC},
		{"LeaseKeepsImportFromGC", testLease},
		{"Verify", testVerify},
		{"ConcurrentLayerImports", testConcurrent},
		{"Whiteouts", testWhiteouts},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var ctx = context.Background()

// Image is a layered test image: layers lowest first.
type Image struct {
	Name   string
	Layers []*TestLayer
	Info   *imagestore.ImageInfo
}

// PutImage stores a layered image (layers, config, manifest, record) as
// a fetcher does, under one lease.
func PutImage(t testing.TB, s imagestore.Interface, name string, layers ...*TestLayer) *imagestore.ImageInfo {
	t.Helper()
	info, err := putImage(s, name, layers...)
	if err != nil {
		t.Fatalf("storing image %s: %v", name, err)
	}
	return info
}

func putImage(s imagestore.Interface, name string, layers ...*TestLayer) (*imagestore.ImageInfo, error) {
	lease := s.NewLease()
	defer lease.Close()
	info := &imagestore.ImageInfo{Name: name, MediaType: "application/vnd.oci.image.manifest.v1+json"}
	config := []byte(fmt.Sprintf(`{"name":%q,"layers":%d}`, name, len(layers)))
	info.Config = Digest(config)
	if err := s.PutBlob(ctx, info.Config, bytes.NewReader(config), lease); err != nil {
		return nil, err
	}
	manifest := fmt.Sprintf(`{"config":%q,"layers":[`, info.Config)
	for i, l := range layers {
		stored, err := s.PutLayer(ctx, l.Desc, l.Open, lease)
		if err != nil {
			return nil, err
		}
		info.Layers = append(info.Layers, stored)
		if i > 0 {
			manifest += ","
		}
		manifest += fmt.Sprintf("%q", l.Desc.Digest)
	}
	info.Manifest = []byte(manifest + "]}")
	info.Key = Digest(info.Manifest)
	if err := s.PutBlob(ctx, info.Key, bytes.NewReader(info.Manifest), lease); err != nil {
		return nil, err
	}
	if err := s.PutRecord(ctx, info); err != nil {
		return nil, err
	}
	return info, nil
}

func readBlob(s imagestore.Interface, key string) ([]byte, error) {
	f, err := s.OpenBlob(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("a stored blob was read again")
	return 0, io.ErrUnexpectedEOF
}

func testBlobs(t *testing.T, s imagestore.Interface) {
	data := []byte("some content")
	key := Digest(data)
	if _, err := s.OpenBlob(key); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("OpenBlob of a missing blob: %v, want ErrNotFound", err)
	}
	if err := s.PutBlob(ctx, key, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(s, key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("OpenBlob = %q, %v", got, err)
	}
	if err := s.PutBlob(ctx, key, failReader{t}, nil); err != nil {
		t.Errorf("PutBlob of a stored blob: %v", err)
	}
	wrong := Digest([]byte("other"))
	if err := s.PutBlob(ctx, wrong, bytes.NewReader(data), nil); !errors.Is(err, imagestore.ErrDigest) {
		t.Errorf("PutBlob under the wrong digest: %v, want ErrDigest", err)
	}
	if _, err := s.OpenBlob(wrong); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("a blob that failed its digest is visible: %v", err)
	}
	for _, bad := range []string{"sha256:abc", "md5:00", "sha256:../../x", ""} {
		if err := s.PutBlob(ctx, bad, bytes.NewReader(data), nil); err == nil {
			t.Errorf("PutBlob(%q) succeeded", bad)
		}
	}
}

// errAfter yields n bytes of r, then fails: a process dying mid-write.
type errAfter struct {
	r io.Reader
	n int
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func testHalfWrittenBlob(t *testing.T, s imagestore.Interface) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	key := Digest(data)
	if err := s.PutBlob(ctx, key, &errAfter{bytes.NewReader(data), 1000}, nil); err == nil {
		t.Fatal("PutBlob of a broken stream succeeded")
	}
	if _, err := s.OpenBlob(key); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("a half-written blob is visible: %v", err)
	}
	if err := s.PutBlob(ctx, key, bytes.NewReader(data), nil); err != nil {
		t.Fatalf("PutBlob after a failed one: %v", err)
	}
}

func base(t testing.TB) *TestLayer {
	return NewLayer(t, Dir("etc"), File("etc/os-release", "base\n"), File("etc/shadow", "s"), Dir("usr"), File("usr/a", "a"))
}

func top(t testing.TB) *TestLayer {
	return NewLayer(t, Dir("etc"), File("etc/os-release", "top\n"), File("app", "#!/bin/sh\n"))
}

func readIn(dirs []string, rel string) (string, int, error) {
	for i, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, rel))
		if err == nil {
			return string(b), i, nil
		}
	}
	return "", -1, os.ErrNotExist
}

func testLayeredRecord(t *testing.T, s imagestore.Interface) {
	b, tp := base(t), top(t)
	info := PutImage(t, s, "example.com/layered", b, tp)
	got, err := s.Get(info.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.IsACI() || got.MediaType != info.MediaType || got.Config != info.Config || len(got.Layers) != 2 ||
		got.Layers[0].DiffID != b.Desc.DiffID || got.Layers[1].DiffID != tp.Desc.DiffID || !bytes.Equal(got.Manifest, info.Manifest) {
		t.Fatalf("record read back: %+v", got)
	}
	if got.ImportTime.IsZero() || got.Size == 0 || got.UnpackedSize == 0 || got.DiskUsage <= got.Size {
		t.Errorf("record without import time or sizes: %+v", got)
	}
	for _, l := range got.Layers {
		if l.Size == 0 || l.Unpacked == 0 || l.Disk == 0 {
			t.Errorf("layer %s without sizes: %+v", l.DiffID, l)
		}
	}
	if r, err := s.Resolve(imagestore.ShortKey(info.Key)); err != nil || r.Key != info.Key {
		t.Errorf("Resolve(%s) = %v, %v", imagestore.ShortKey(info.Key), r, err)
	}
	if r, err := s.Resolve("example.com/layered"); err != nil || r.Key != info.Key {
		t.Errorf("Resolve by name = %v, %v", r, err)
	}
	dirs, err := s.LowerDirs(got)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("LowerDirs = %v, %v", dirs, err)
	}
	// Top first: the top layer's file wins, the base's shows through.
	if body, at, _ := readIn(dirs, "etc/os-release"); body != "top\n" || at != 0 {
		t.Errorf("etc/os-release = %q from lower dir %d, want the top layer's from 0", body, at)
	}
	if body, at, _ := readIn(dirs, "usr/a"); body != "a" || at != 1 {
		t.Errorf("usr/a = %q from lower dir %d, want the base layer's from 1", body, at)
	}
	for _, k := range []string{info.Key, info.Config, b.Desc.Digest, tp.Desc.Digest} {
		if _, err := readBlob(s, k); err != nil {
			t.Errorf("blob %s: %v", k, err)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Key != info.Key {
		t.Errorf("List = %v, %v", list, err)
	}
}

func testSharedLayer(t *testing.T, s imagestore.Interface) {
	b := base(t)
	a := PutImage(t, s, "example.com/a", b, top(t))
	c := PutImage(t, s, "example.com/c", b, NewLayer(t, File("other", "o")))
	if b.Opened != 1 {
		t.Errorf("the shared layer was opened %d times, want once", b.Opened)
	}
	if a.Layers[0].TreeID != c.Layers[0].TreeID || a.Layers[0].TreeID != imagestore.LayerTreeID(b.Desc.DiffID) {
		t.Errorf("shared layer trees: %s and %s", a.Layers[0].TreeID, c.Layers[0].TreeID)
	}
	da, _ := s.LowerDirs(a)
	dc, _ := s.LowerDirs(c)
	if da[1] != dc[1] {
		t.Errorf("the images' base directories differ: %s, %s", da[1], dc[1])
	}
}

func testLayerDigests(t *testing.T, s imagestore.Interface) {
	l := base(t)
	for name, d := range map[string]imagestore.LayerDesc{
		"blob digest": {Digest: Digest([]byte("no")), DiffID: l.Desc.DiffID},
		"diff ID":     {Digest: l.Desc.Digest, DiffID: Digest([]byte("no"))},
		"not sha256":  {Digest: "sha512-" + l.Desc.Digest[7:], DiffID: l.Desc.DiffID},
	} {
		_, err := s.PutLayer(ctx, d, l.Open, nil)
		if err == nil {
			t.Errorf("%s wrong: PutLayer succeeded", name)
		}
		if name != "not sha256" && !errors.Is(err, imagestore.ErrDigest) {
			t.Errorf("%s wrong: %v, want ErrDigest", name, err)
		}
		if s.HasLayer(d.DiffID) {
			t.Errorf("%s wrong: the layer's tree is visible", name)
		}
		if _, err := s.OpenBlob(d.Digest); !errors.Is(err, imagestore.ErrNotFound) {
			t.Errorf("%s wrong: the layer's blob is visible (%v)", name, err)
		}
	}
}

func testHalfWrittenLayer(t *testing.T, s imagestore.Interface) {
	l := NewLayer(t, File("big", string(bytes.Repeat([]byte("y"), 1<<20))), File("after", "z"))
	broken := func() (io.ReadCloser, error) {
		return io.NopCloser(&errAfter{bytes.NewReader(l.Blob), len(l.Blob) / 2}), nil
	}
	if _, err := s.PutLayer(ctx, l.Desc, broken, nil); err == nil {
		t.Fatal("PutLayer of a broken stream succeeded")
	}
	if s.HasLayer(l.Desc.DiffID) {
		t.Fatal("a half-extracted layer is visible")
	}
	if _, err := s.OpenBlob(l.Desc.Digest); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("a half-written layer blob is visible: %v", err)
	}
	if _, err := s.PutLayer(ctx, l.Desc, l.Open, nil); err != nil || !s.HasLayer(l.Desc.DiffID) {
		t.Fatalf("PutLayer after a failed one: %v", err)
	}
}

func testHostileLayers(t *testing.T, s imagestore.Interface) {
	for name, l := range map[string]*TestLayer{
		"dotdot":                 NewLayer(t, File("../escape", "x")),
		"absolute":               NewLayer(t, File("/etc/passwd", "x")),
		"symlink parent":         NewLayer(t, Entry{Name: "l", Type: '2', Linkname: "/etc"}, File("l/passwd", "x")),
		"device":                 NewLayer(t, Entry{Name: "dev/sda", Type: '4', Mode: 0o600}),
		"setuid":                 NewLayer(t, Entry{Name: "su", Body: "x", Mode: 0o4755}),
		"whiteout climbing":      NewLayer(t, Whiteout("a/.wh..."), Whiteout("../.wh.etc")),
		"entry below whiteout":   NewLayer(t, File(".wh.a/b", "x")),
		"whiteout below symlink": NewLayer(t, Entry{Name: "l", Type: '2', Linkname: "/etc"}, Whiteout("l/.wh.passwd")),
	} {
		if _, err := s.PutLayer(ctx, l.Desc, l.Open, nil); err == nil {
			t.Errorf("%s: PutLayer succeeded", name)
		}
		if s.HasLayer(l.Desc.DiffID) {
			t.Errorf("%s: the layer is visible", name)
		}
	}
	// A bomb: a small blob of many zeros, bounded by MaxSize.
	bomb := NewLayer(t, File("zeros", string(make([]byte, 4<<20))))
	d := bomb.Desc
	d.MaxSize = 1 << 20
	if _, err := s.PutLayer(ctx, d, bomb.Open, nil); !errors.Is(err, imagestore.ErrTooLarge) {
		t.Errorf("a layer past MaxSize: %v, want ErrTooLarge", err)
	}
	if s.HasLayer(d.DiffID) {
		t.Error("the bomb's layer is visible")
	}
}

func testRecordNeedsContent(t *testing.T, s imagestore.Interface) {
	l := base(t)
	stored, err := s.PutLayer(ctx, l.Desc, l.Open, nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest := []byte(`{"m":1}`)
	info := &imagestore.ImageInfo{Key: Digest(manifest), Name: "example.com/x", MediaType: "application/vnd.oci.image.manifest.v1+json",
		Manifest: manifest, Layers: []imagestore.Layer{stored}}
	if err := s.PutRecord(ctx, info); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("PutRecord without its manifest blob: %v, want ErrNotFound", err)
	}
	if err := s.PutBlob(ctx, info.Key, bytes.NewReader(manifest), nil); err != nil {
		t.Fatal(err)
	}
	missing := *info
	missing.Layers = append([]imagestore.Layer{{Digest: stored.Digest, DiffID: Digest([]byte("none"))}}, stored)
	if err := s.PutRecord(ctx, &missing); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("PutRecord with a layer not stored: %v, want ErrNotFound", err)
	}
	aci := *info
	aci.MediaType = ""
	if err := s.PutRecord(ctx, &aci); err == nil {
		t.Error("PutRecord of an ACI record succeeded")
	}
	if _, err := s.Get(info.Key); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("a refused record is visible: %v", err)
	}
	if err := s.PutRecord(ctx, info); err != nil {
		t.Fatalf("PutRecord with everything stored: %v", err)
	}
}

func testRemoveShared(t *testing.T, s imagestore.Interface) {
	b, ta, tc := base(t), top(t), NewLayer(t, File("other", "o"))
	a := PutImage(t, s, "example.com/a", b, ta)
	c := PutImage(t, s, "example.com/c", b, tc)
	if err := s.Remove(ctx, a.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(a.Key); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("removed record: %v", err)
	}
	if s.HasLayer(ta.Desc.DiffID) {
		t.Error("the removed image's own layer is still there")
	}
	if !s.HasLayer(b.Desc.DiffID) {
		t.Error("the shared layer was removed with one of its images")
	}
	if _, err := s.LowerDirs(c); err != nil {
		t.Errorf("the other image lost its trees: %v", err)
	}
	for _, k := range []string{a.Key, a.Config, ta.Desc.Digest} {
		if _, err := s.OpenBlob(k); !errors.Is(err, imagestore.ErrNotFound) {
			t.Errorf("blob %s of the removed image: %v", imagestore.ShortKey(k), err)
		}
	}
	if _, err := s.OpenBlob(b.Desc.Digest); err != nil {
		t.Errorf("the shared layer's blob: %v", err)
	}
	if err := s.Remove(ctx, c.Key); err != nil {
		t.Fatal(err)
	}
	if s.HasLayer(b.Desc.DiffID) || s.HasLayer(tc.Desc.DiffID) {
		t.Error("layers left after removing every image")
	}
	if _, err := s.OpenBlob(b.Desc.Digest); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("the shared layer's blob after removing both images: %v", err)
	}
	// The trees an (exited) pod lists stay.
	a = PutImage(t, s, "example.com/a", b, ta)
	if err := s.Remove(ctx, a.Key, map[string]bool{imagestore.LayerTreeID(b.Desc.DiffID): true}); err != nil {
		t.Fatal(err)
	}
	if !s.HasLayer(b.Desc.DiffID) || s.HasLayer(ta.Desc.DiffID) {
		t.Errorf("Remove with a pod listing the base: base %v, top %v; want true, false", s.HasLayer(b.Desc.DiffID), s.HasLayer(ta.Desc.DiffID))
	}
}

func testGC(t *testing.T, s imagestore.Interface) {
	b, ta := base(t), top(t)
	a := PutImage(t, s, "example.com/a", b, ta)
	// Fresh images stay.
	if rep, err := s.GC(ctx, time.Hour); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("GC of fresh images: %+v, %v", rep, err)
	}
	// A pod using the image's trees pins it.
	pod := map[string]bool{}
	for _, tr := range a.Trees() {
		pod[tr] = true
	}
	if rep, err := s.GC(ctx, 0, pod); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("GC with a pod using the image: %+v, %v", rep, err)
	}
	// A pod of another image that shares only the base layer does not
	// pin it; its base layer stays for that pod.
	other := PutImage(t, s, "example.com/other", b, NewLayer(t, File("o", "o")))
	otherPod := map[string]bool{}
	for _, tr := range other.Trees() {
		otherPod[tr] = true
	}
	if rep, err := s.GC(ctx, 0, otherPod); err != nil || len(rep.Removed) != 1 || rep.Removed[0] != a.Key {
		t.Fatalf("GC with a pod of an image sharing the base: %+v, %v; want %s removed", rep, err, imagestore.ShortKey(a.Key))
	}
	if !s.HasLayer(b.Desc.DiffID) || s.HasLayer(ta.Desc.DiffID) {
		t.Fatalf("after GC: base layer %v, top layer %v; want the base kept for the other pod, the top removed", s.HasLayer(b.Desc.DiffID), s.HasLayer(ta.Desc.DiffID))
	}
	a = PutImage(t, s, "example.com/a", b, ta)
	// Once its image is removed, a pod still keeps the layers it uses.
	if err := s.Remove(ctx, a.Key); err != nil {
		t.Fatal(err)
	}
	c := PutImage(t, s, "example.com/c", b, ta)
	if err := s.Remove(ctx, c.Key); err != nil {
		t.Fatal(err)
	}
	// (Remove took both trees; bring the layers back without a record.)
	if _, err := s.PutLayer(ctx, b.Desc, b.Open, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, 0, map[string]bool{imagestore.LayerTreeID(b.Desc.DiffID): true}); err != nil {
		t.Fatal(err)
	}
	if !s.HasLayer(b.Desc.DiffID) {
		t.Error("GC removed a layer a pod uses")
	}
	rep, err := s.GC(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.HasLayer(b.Desc.DiffID) || rep.Trees == 0 {
		t.Errorf("GC left an unreferenced layer: %+v", rep)
	}
	if _, err := s.OpenBlob(b.Desc.Digest); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("GC left an unreferenced layer blob: %v", err)
	}
	// Expired images go, with their layers and blobs.
	e := PutImage(t, s, "example.com/e", b, ta)
	if rep, err := s.GC(ctx, 0); err != nil || len(rep.Removed) != 1 || rep.Removed[0] != e.Key {
		t.Fatalf("GC of an expired image: %+v, %v", rep, err)
	}
	if s.HasLayer(b.Desc.DiffID) || s.HasLayer(ta.Desc.DiffID) {
		t.Error("layers of an expired image left")
	}
	if _, err := s.OpenBlob(e.Config); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("config blob of an expired image: %v", err)
	}
}

func testLease(t *testing.T, s imagestore.Interface) {
	l := base(t)
	lease := s.NewLease()
	defer lease.Close()
	if _, err := s.PutLayer(ctx, l.Desc, l.Open, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !s.HasLayer(l.Desc.DiffID) {
		t.Fatal("GC removed a layer an import holds under its lease")
	}
	if _, err := s.OpenBlob(l.Desc.Digest); err != nil {
		t.Fatalf("GC removed a blob an import holds under its lease: %v", err)
	}
	lease.Close()
	if _, err := s.GC(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if s.HasLayer(l.Desc.DiffID) {
		t.Error("GC kept an unreferenced layer once its lease was closed")
	}
}

func testVerify(t *testing.T, s imagestore.Interface) {
	info := PutImage(t, s, "example.com/v", base(t), top(t))
	if err := s.VerifyTree(info); err != nil {
		t.Fatalf("VerifyTree of a fresh image: %v", err)
	}
	dirs, _ := s.LowerDirs(info)
	p := filepath.Join(dirs[1], "usr/a")
	if err := os.WriteFile(p, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyTree(info); !errors.Is(err, imagestore.ErrTreeInvalid) {
		t.Errorf("VerifyTree of a changed layer: %v, want ErrTreeInvalid", err)
	}
}

func testConcurrent(t *testing.T, s imagestore.Interface) {
	l := base(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	var mu sync.Mutex
	opened := 0
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			open := func() (io.ReadCloser, error) {
				mu.Lock()
				opened++
				mu.Unlock()
				return io.NopCloser(bytes.NewReader(l.Blob)), nil
			}
			other := NewLayer(t, File(fmt.Sprintf("f%d", i), "x"))
			lease := s.NewLease()
			defer lease.Close()
			_, err := s.PutLayer(ctx, l.Desc, open, lease)
			if err == nil {
				_, err = putImage(s, fmt.Sprintf("example.com/c%d", i), &TestLayer{Blob: l.Blob, Desc: l.Desc}, other)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if opened != 1 {
		t.Errorf("concurrent imports of one layer opened it %d times, want once", opened)
	}
	if list, err := s.List(); err != nil || len(list) != 6 {
		t.Errorf("List after concurrent imports: %d records, %v", len(list), err)
	}
}

func testWhiteouts(t *testing.T, s imagestore.Interface) {
	testutil.RequireRoot(t)
	b := base(t)
	tp := NewLayer(t, Whiteout("etc/.wh.shadow"), Dir("usr"), Whiteout("usr/.wh..wh..opq"), File("usr/b", "b"))
	info := PutImage(t, s, "example.com/wh", b, tp)
	dirs, err := s.LowerDirs(info)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dirs[0], "etc/shadow"))
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("etc/shadow in the top layer: %v, %v; want a whiteout", fi, err)
	}
	if err := s.VerifyTree(info); err != nil {
		t.Errorf("VerifyTree of a layer with whiteouts: %v", err)
	}
}
