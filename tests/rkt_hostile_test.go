package tests

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rkt/rkt/tests/testutils"
)

// hostileCase is one image rkt fetch must refuse.
type hostileCase struct {
	name  string
	build func(t *testing.T, dir, outside string) string // writes the image (and what it needs) into dir, returns its path
	want  []string                                       // in stderr, besides the image path
}

// benignEntries are the harmless part of every hostile image.
func benignEntries() []testutils.Entry {
	return []testutils.Entry{testutils.Dir("etc", 0o755), testutils.File("etc/ok", 0o644, strings.Repeat("fine\n", 2000))}
}

// hostileImage builds an image of the good entries plus es.
func hostileImage(es ...testutils.Entry) func(t *testing.T, dir, outside string) string {
	return func(t *testing.T, dir, _ string) string {
		return writeACI(t, dir, "img.aci", testutils.ACI{Image: testutils.Image{Name: "example.com/hostile"},
			Entries: append(benignEntries(), es...)})
	}
}

// hostileBytes writes data as the image.
func hostileBytes(data func(t *testing.T) []byte) func(t *testing.T, dir, outside string) string {
	return func(t *testing.T, dir, _ string) string {
		p := filepath.Join(dir, "img.aci")
		if err := os.WriteFile(p, data(t), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// aciBytesOf builds a (named example.com/hostile unless said otherwise).
func aciBytesOf(a testutils.ACI) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		if a.Image.Name == "" && a.Manifest == nil {
			a.Image.Name = "example.com/hostile"
		}
		b, err := a.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// truncatedACI cuts a compressed image at two thirds.
func truncatedACI(c testutils.Compression) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		b := aciBytesOf(testutils.ACI{Entries: benignEntries(), Compression: c})(t)
		return b[:len(b)*2/3]
	}
}

// corruptedACI flips bytes two thirds into a compressed image.
func corruptedACI(c testutils.Compression) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		b := aciBytesOf(testutils.ACI{Entries: benignEntries(), Compression: c})(t)
		for i := len(b) * 2 / 3; i < len(b)*2/3+24 && i < len(b); i++ {
			b[i] ^= 0x3c
		}
		return b
	}
}

// rawEntry is an entry written verbatim (name not prefixed).
func rawEntry(name string, typ byte, mode int64, link string) testutils.Entry {
	return testutils.Entry{Header: tar.Header{Name: name, Typeflag: typ, Mode: mode, Linkname: link}}
}

// withDep writes top (depending on example.com/dep with labels and id) and
// dep, stored as depFile next to it.
func withDep(labels map[string]string, id string, dep testutils.ACI, depFile string) func(t *testing.T, dir, outside string) string {
	return func(t *testing.T, dir, _ string) string {
		writeACI(t, dir, depFile, dep)
		return writeACI(t, dir, "top.aci", testutils.ACI{Image: testutils.Image{Name: "example.com/top",
			Dependencies: []testutils.Dependency{{ImageName: "example.com/dep", Labels: labels, ImageID: id}}},
			Entries: benignEntries()})
	}
}

// gnuSparseBomb is a plain-tar ACI holding one old-GNU sparse file of
// realSize bytes, all hole: a 3 KiB archive whose extraction writes
// realSize bytes of zeros.
func gnuSparseBomb(realSize int64) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		var buf bytes.Buffer
		m, _ := testutils.ManifestJSON(testutils.Image{Name: "example.com/sparse"})
		tw := tar.NewWriter(&buf)
		for _, e := range []testutils.Entry{testutils.File("manifest", 0o644, string(m)), testutils.Dir("rootfs", 0o755)} {
			e.Header.ModTime = testutils.FixedTime
			tw.WriteHeader(&e.Header)
			tw.Write(e.Body)
		}
		tw.Flush()
		h := make([]byte, 512)
		field := func(off, n int, v int64) { copy(h[off:off+n], fmt.Sprintf("%0*o\x00", n-1, v)) }
		copy(h, "rootfs/hole")
		field(100, 8, 0o644)
		field(108, 8, 0)
		field(116, 8, 0)
		field(124, 12, 0) // no stored data
		field(136, 12, testutils.FixedTime.Unix())
		h[156] = tar.TypeGNUSparse
		copy(h[257:], "ustar  \x00")
		field(483, 12, realSize)
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		buf.Write(h)
		buf.Write(make([]byte, 1024))
		return buf.Bytes()
	}
}

func hostileCases() []hostileCase {
	good := testutils.ACI{Entries: benignEntries()}
	trusted := testutils.File("etc/x", 0o644, "x")
	trusted.Header.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
	depV1 := testutils.ACI{Image: testutils.Image{Name: "example.com/dep", Labels: map[string]string{"version": "1"}}, Entries: benignEntries()}
	return []hostileCase{
		{"empty file", hostileBytes(func(*testing.T) []byte { return nil }), []string{"empty"}},
		{"not an image", hostileBytes(func(*testing.T) []byte { return bytes.Repeat([]byte("no tar here "), 100) }), nil},
		{"truncated gzip", hostileBytes(truncatedACI(testutils.CompressionGzip)), []string{"gzip"}},
		{"corrupt gzip", hostileBytes(corruptedACI(testutils.CompressionGzip)), []string{"gzip"}},
		{"truncated bzip2", hostileBytes(truncatedACI(testutils.CompressionBzip2)), []string{"bzip2"}},
		{"corrupt bzip2", hostileBytes(corruptedACI(testutils.CompressionBzip2)), []string{"bzip2"}},
		{"truncated xz", hostileBytes(truncatedACI(testutils.CompressionXz)), []string{"xz"}},
		{"corrupt xz", hostileBytes(corruptedACI(testutils.CompressionXz)), []string{"xz"}},
		{"truncated zstd", hostileBytes(truncatedACI(testutils.CompressionZstd)), []string{"zstd"}},
		{"corrupt zstd", hostileBytes(corruptedACI(testutils.CompressionZstd)), []string{"zstd"}},
		{"truncated tar", hostileBytes(func(t *testing.T) []byte { b := aciBytesOf(good)(t); return b[:len(b)-3000] }), []string{"truncated"}},
		{"corrupt tar header", hostileBytes(func(t *testing.T) []byte {
			b := aciBytesOf(good)(t)
			i := bytes.Index(b, []byte("rootfs/etc/ok"))
			if i < 0 {
				t.Fatal("no rootfs/etc/ok header in the archive")
			}
			b[i+7] = 'X' // the header checksum no longer matches
			return b
		}), []string{"corrupt"}},
		{"name too long", hostileImage(testutils.File("etc/"+strings.Repeat("n", 5000), 0o644, "x")), []string{"longer than"}},
		{"missing manifest", hostileBytes(aciBytesOf(testutils.ACI{OmitManifest: true, Entries: benignEntries()})), []string{"manifest"}},
		{"manifest not JSON", hostileBytes(aciBytesOf(testutils.ACI{Manifest: []byte(`{"acKind": "ImageManifest",`), Entries: benignEntries()})), []string{"manifest", "JSON"}},
		{"invalid manifest", hostileBytes(aciBytesOf(testutils.ACI{Manifest: []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"NOT A NAME"}`), Entries: benignEntries()})), []string{"manifest"}},
		{"wrong acKind", hostileBytes(aciBytesOf(testutils.ACI{Manifest: []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[]}`), Entries: benignEntries()})), []string{"acKind", "PodManifest"}},
		{"unknown manifest version", hostileBytes(aciBytesOf(testutils.ACI{Manifest: []byte(`{"acKind":"ImageManifest","acVersion":"2.0.0","name":"example.com/x"}`), Entries: benignEntries()})), []string{"2.0.0"}},
		{"two manifests", hostileImage(testutils.File("manifest", 0o644, "{}")), []string{"manifest"}},
		{"entry beside rootfs", hostileImage(rawEntry("etc/passwd", tar.TypeReg, 0o644, "")), []string{"etc/passwd"}},
		{"duplicate entry", hostileImage(testutils.File("etc/dup", 0o644, "1"), testutils.File("etc/dup", 0o600, "2")), []string{"etc/dup", "duplicate"}},
		{"dot-dot path", hostileImage(testutils.File("../../../../../tmp/rkt-escape", 0o644, "x")), []string{"rkt-escape", `".."`}},
		{"absolute path", hostileImage(rawEntry("rootfs//etc/abs", tar.TypeReg, 0o644, "")), []string{"/etc/abs", "absolute"}},
		{"entry under a symlinked parent", func(t *testing.T, dir, outside string) string {
			return hostileImage(testutils.Symlink("escape", outside), testutils.File("escape/pwned", 0o644, "x"))(t, dir, outside)
		}, []string{"escape/pwned", "symlink"}},
		{"directory under a symlinked parent", func(t *testing.T, dir, outside string) string {
			return hostileImage(testutils.Symlink("escape", outside), testutils.Dir("escape/sub", 0o755))(t, dir, outside)
		}, []string{"escape/sub", "symlink"}},
		{"symlink pointing outside", hostileImage(testutils.Symlink("etc/up", "../../../../etc/shadow")), []string{"etc/up", "outside"}},
		{"hardlink pointing outside", hostileImage(rawEntry("rootfs/etc/hl", tar.TypeLink, 0o644, "rootfs/../../../etc/shadow")), []string{"etc/hl", "hardlink"}},
		{"hardlink to a host path", hostileImage(rawEntry("rootfs/etc/hl", tar.TypeLink, 0o644, "/etc/shadow")), []string{"etc/hl", "hardlink"}},
		{"hardlink to a symlink", func(t *testing.T, dir, outside string) string {
			return hostileImage(testutils.Symlink("etc/sl", filepath.Join(outside, "f")), testutils.Hardlink("etc/sl2", "etc/sl"))(t, dir, outside)
		}, []string{"etc/sl2", "hardlink"}},
		{"character device", hostileImage(rawEntry("rootfs/dev/kmem", tar.TypeChar, 0o600, "")), []string{"dev/kmem", "device"}},
		{"block device", hostileImage(rawEntry("rootfs/dev/sda", tar.TypeBlock, 0o600, "")), []string{"dev/sda", "device"}},
		{"setuid file", hostileImage(testutils.File("bin/su", 0o4755, "x")), []string{"bin/su", "setuid"}},
		{"setgid file", hostileImage(testutils.File("bin/wall", 0o2755, "x")), []string{"bin/wall", "setgid"}},
		{"trusted xattr", hostileImage(trusted), []string{"etc/x", "trusted.overlay.opaque"}},
		{"decompression bomb", hostileBytes(aciBytesOf(testutils.ACI{Entries: []testutils.Entry{testutils.File("zeros", 0o644, string(make([]byte, 32<<20)))},
			Compression: testutils.CompressionZstd})), []string{"--max-size"}},
		{"sparse-file bomb", hostileBytes(gnuSparseBomb(32 << 20)), []string{"--max-size"}},
		{"dependency with another version", withDep(map[string]string{"version": "2"}, "", depV1, "dep-2.aci"), []string{"example.com/dep", "version"}},
		{"dependency with another name", withDep(nil, "", testutils.ACI{Image: testutils.Image{Name: "example.com/impostor"}, Entries: benignEntries()}, "dep.aci"),
			[]string{"example.com/impostor", "example.com/dep"}},
		{"dependency with another ID", withDep(nil, "sha512-"+strings.Repeat("ab", 32), depV1, "dep.aci"), []string{"sha512-" + strings.Repeat("ab", 32)}},
		{"hostile dependency", withDep(nil, "", testutils.ACI{Image: testutils.Image{Name: "example.com/dep"},
			Entries: append(benignEntries(), testutils.File("bin/su", 0o4755, "x"))}, "dep.aci"), []string{"bin/su", "setuid"}},
		{"missing dependency", withDep(nil, "", depV1, "unrelated.aci"), []string{"example.com/dep"}},
		{"dependency cycle", func(t *testing.T, dir, _ string) string {
			writeACI(t, dir, "b.aci", testutils.ACI{Image: testutils.Image{Name: "example.com/b",
				Dependencies: []testutils.Dependency{{ImageName: "example.com/a"}}}, Entries: benignEntries()})
			return writeACI(t, dir, "a.aci", testutils.ACI{Image: testutils.Image{Name: "example.com/a",
				Dependencies: []testutils.Dependency{{ImageName: "example.com/b"}}}, Entries: benignEntries()})
		}, []string{"deep"}},
	}
}

// TestFetchRefusesHostileImages fetches every hostile image into a store
// holding one good image: each must fail with exit 254 and a message
// naming the image and the offending entry, and leave the store and the
// directory outside it exactly as they were.
func TestFetchRefusesHostileImages(t *testing.T) {
	c := newImageCtx(t)
	fetchOK(t, c, writeACI(t, t.TempDir(), "seed.aci", smallACI("example.com/seed", "1", "seed")))
	before := captureStore(t, c)
	for _, hc := range hostileCases() {
		t.Run(hc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			p := hc.build(t, dir, outside)
			args := []string{"fetch", insecureImage, "--max-size=10M", p}
			r := c.Run(args...)
			t.Logf("%s", strings.TrimSpace(r.Stderr))
			if r.Exit != 254 {
				t.Errorf("%s", describeResult(args, r))
			}
			named := p
			if strings.Contains(hc.name, "dependency") {
				// Named by its manifest: "image example.com/top: dependency ...".
				named = "image example.com/" + strings.TrimSuffix(filepath.Base(p), ".aci")
			}
			for _, w := range append([]string{named}, hc.want...) {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr does not mention %q: %s", w, r.Stderr)
				}
			}
			if strings.Contains(r.Stderr, "panic") || strings.Contains(r.Stderr, "goroutine") {
				t.Errorf("rkt crashed: %s", r.Stderr)
			}
			assertStoreUnchanged(t, c, before)
			assertEmptyDir(t, outside)
			if r.Exit == 0 {
				// Put the store back for the next case.
				for _, id := range strings.Fields(r.Stdout) {
					c.Run("image", "rm", id)
				}
				c.Run("image", "gc", "--grace-period=0s")
				fetchOK(t, c, writeACI(t, t.TempDir(), "seed.aci", smallACI("example.com/seed", "1", "seed")))
				before = captureStore(t, c)
			}
		})
	}
	if _, err := os.Stat("/tmp/rkt-escape"); err == nil {
		t.Error("/tmp/rkt-escape was written by a hostile image")
	}
}

// TestFetchHostileOverHTTP: the same guarantees for downloads, which also
// leave no partial or finished download behind.
func TestFetchHostileOverHTTP(t *testing.T) {
	c := newImageCtx(t)
	srv := newImageServer(t, false)
	fetchOK(t, c, writeACI(t, t.TempDir(), "seed.aci", smallACI("example.com/seed", "1", "seed")))
	before := captureStore(t, c)
	for _, hc := range hostileCases() {
		switch hc.name {
		case "truncated gzip", "dot-dot path", "setuid file", "decompression bomb", "unknown manifest version":
		default:
			continue
		}
		t.Run(hc.name, func(t *testing.T) {
			data, err := os.ReadFile(hc.build(t, t.TempDir(), t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			url := srv.put("/"+strings.ReplaceAll(hc.name, " ", "-")+".aci", data, `"etag-1"`, "max-age=3600")
			args := []string{"fetch", "--insecure-options=http,image", "--max-size=10M", url}
			r := c.Run(args...)
			if r.Exit != 254 || !strings.Contains(r.Stderr, url) {
				t.Errorf("%s", describeResult(args, r))
			}
			assertStoreUnchanged(t, c, before)
			// No cache record either: the next fetch asks again.
			srv.take()
			c.Run(args...)
			if n := len(srv.take()); n != 1 {
				t.Errorf("second fetch of a refused image sent %d requests, want 1", n)
			}
		})
	}
}

// TestFetchHostileIntoFreshStore: a refused first fetch leaves at most the
// empty store skeleton: no file of any kind.
func TestFetchHostileIntoFreshStore(t *testing.T) {
	c := newImageCtx(t)
	p := hostileImage(testutils.File("bin/su", 0o4755, "x"))(t, t.TempDir(), "")
	c.MustFail(254, "bin/su", "fetch", insecureImage, p)
	for path, desc := range snapshotDir(t, c.Dir) {
		if !strings.HasPrefix(desc, "d") {
			t.Errorf("a refused fetch into a fresh store left %s (%s)", path, desc)
		}
	}
	if _, imgs := listImages(t, c); len(imgs) != 0 {
		t.Errorf("images listed: %v", imgs)
	}
}

// diskUsage is the space the files below dir occupy (allocated blocks).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// TestSparseImageStaysSparse: a tiny image holding a 4 GiB GNU sparse
// file (all hole) is stored without writing 4 GiB of zeros, the file
// keeps its length, and image list's size is the space really used.
func TestSparseImageStaysSparse(t *testing.T) {
	c := newImageCtx(t)
	data := gnuSparseBomb(4 << 30)(t)
	p := filepath.Join(t.TempDir(), "sparse.aci")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ids := fetchOK(t, c, p)
	if len(ids) != 1 {
		t.Fatalf("fetch printed %q", ids)
	}
	used := diskUsage(t, c.Dir)
	if used > 16<<20 {
		t.Errorf("a %d-byte image with a sparse file took %d bytes of the store", len(data), used)
	}
	var hole string
	filepath.Walk(filepath.Join(c.Dir, "cas"), func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "hole" && fi.Mode().IsRegular() {
			hole = path
		}
		return nil
	})
	if fi, err := os.Stat(hole); err != nil || fi.Size() != 4<<30 {
		t.Fatalf("the sparse file in the tree: %v, %v; want 4 GiB long", fi, err)
	}
	_, imgs := listImages(t, c)
	if len(imgs) != 1 {
		t.Fatalf("%d images listed", len(imgs))
	}
	// The listed size is the blob and the tree's allocated blocks: at
	// least the blob, at most what the whole data directory uses.
	if imgs[0].Size < int64(len(data)) || imgs[0].Size > used {
		t.Errorf("image list size %d; the blob is %d bytes and the data directory uses %d", imgs[0].Size, len(data), used)
	}
}

// TestFetchIsolatorWithoutValue: appc's decoder dereferences a missing
// isolator value; the image is refused with 254, not a panic.
func TestFetchIsolatorWithoutValue(t *testing.T) {
	c := newImageCtx(t)
	a := smallACI("example.com/novalue", "1.0", "x")
	a.Manifest = []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/novalue",` +
		`"labels":[{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],` +
		`"app":{"exec":["/bin/true"],"user":"0","group":"0","isolators":[{"name":"resource/memory"}]}}`)
	p := writeACI(t, t.TempDir(), "novalue.aci", a)
	r := c.Run(withInsecureImage([]string{"fetch", p})...)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "malformed") || strings.Contains(r.Stderr, "panic") {
		t.Errorf("fetch of an image with an isolator without value: exit %d\nstderr: %s", r.Exit, r.Stderr)
	}
	if _, imgs := listImages(t, c); len(imgs) != 0 {
		t.Errorf("the image was stored: %+v", imgs)
	}
}
