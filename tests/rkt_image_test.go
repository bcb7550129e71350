package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/tests/testutils"
)

var mtime2001 = time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)

// metadataACI has entries whose ownership, modes, xattrs and times must
// survive extraction.
func metadataACI() testutils.ACI {
	own := func(e testutils.Entry, uid, gid int) testutils.Entry {
		e.Header.Uid, e.Header.Gid, e.Header.ModTime = uid, gid, mtime2001
		return e
	}
	x := own(testutils.File("data/xattr", 0o640, "with xattr"), 0, 0)
	x.Header.PAXRecords = map[string]string{"SCHILY.xattr.user.rkt": "test-value"}
	return testutils.ACI{
		Image: testutils.Image{Name: "example.com/meta", Labels: map[string]string{"version": "1"}},
		Entries: []testutils.Entry{
			own(testutils.Dir("data", 0o750), 42, 43),
			own(testutils.File("data/owned", 0o604, "owned"), 1234, 5678),
			own(testutils.File("data/exec", 0o711, "exec"), 0, 0),
			x,
			own(testutils.Symlink("data/link", "owned"), 77, 88),
			own(testutils.Hardlink("data/owned-hard", "data/owned"), 1234, 5678),
			own(testutils.Entry{Header: tar.Header{Name: "rootfs/data/fifo", Typeflag: tar.TypeFifo, Mode: 0o620}}, 5, 6),
			own(testutils.Dir("tmp", 0o1777), 0, 0),
			own(testutils.Dir("shared", 0o2775), 0, 100),
			testutils.File("implicit/parent/file", 0o644, "parents not in the archive"),
		},
		Compression: testutils.CompressionGzip,
	}
}

// checkMetadata checks the metadata ACI's tree below rootfs.
func checkMetadata(t *testing.T, where, rootfs string) {
	t.Helper()
	want := []struct {
		path     string
		mode     uint32
		uid, gid uint32
	}{
		{"data", unix.S_IFDIR | 0o750, 42, 43},
		{"data/owned", unix.S_IFREG | 0o604, 1234, 5678},
		{"data/owned-hard", unix.S_IFREG | 0o604, 1234, 5678},
		{"data/exec", unix.S_IFREG | 0o711, 0, 0},
		{"data/xattr", unix.S_IFREG | 0o640, 0, 0},
		{"data/link", unix.S_IFLNK | 0o777, 77, 88},
		{"data/fifo", unix.S_IFIFO | 0o620, 5, 6},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0},
		{"shared", unix.S_IFDIR | 0o2775, 0, 100},
	}
	for _, w := range want {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(rootfs, w.path), &st); err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if st.Mode != w.mode || st.Uid != w.uid || st.Gid != w.gid {
			t.Errorf("%s: %s has mode %o owner %d:%d, want %o %d:%d", where, w.path, st.Mode, st.Uid, st.Gid, w.mode, w.uid, w.gid)
		}
		if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(mtime2001) {
			t.Errorf("%s: %s has mtime %v, want %v", where, w.path, got.UTC(), mtime2001)
		}
	}
	var a, b syscall.Stat_t
	syscall.Lstat(filepath.Join(rootfs, "data/owned"), &a)
	syscall.Lstat(filepath.Join(rootfs, "data/owned-hard"), &b)
	if a.Ino != b.Ino {
		t.Errorf("%s: data/owned-hard is not a hard link of data/owned", where)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(rootfs, "data/xattr"), "user.rkt", buf)
	if err != nil || string(buf[:n]) != "test-value" {
		t.Errorf("%s: xattr user.rkt = %q, %v; want test-value", where, buf[:max(n, 0)], err)
	}
	if l, err := os.Readlink(filepath.Join(rootfs, "data/link")); err != nil || l != "owned" {
		t.Errorf("%s: data/link -> %q, %v", where, l, err)
	}
}

func TestImageMetadataSurvives(t *testing.T) {
	c := newImageCtx(t)
	a := metadataACI()
	id := fetchOK(t, c, "--full", writeACI(t, t.TempDir(), "meta.aci", a))[0]
	checkMetadata(t, "store tree", filepath.Join(c.Dir, "cas", "tree", id, "rootfs"))

	out := t.TempDir()
	ext := filepath.Join(out, "extracted")
	c.MustRun("image", "extract", id, ext)
	checkMetadata(t, "image extract", filepath.Join(ext, "rootfs"))
	manifest, _ := testutils.ManifestJSON(a.Image)
	if got, err := os.ReadFile(filepath.Join(ext, "manifest")); err != nil || !bytes.Equal(got, manifest) {
		t.Errorf("extracted manifest = %s, %v; want %s", got, err, manifest)
	}
	rnd := filepath.Join(out, "rendered")
	c.MustRun("image", "render", "--rootfs-only", id[:19], rnd)
	checkMetadata(t, "image render --rootfs-only", rnd)
	if _, err := os.Stat(filepath.Join(rnd, "manifest")); !os.IsNotExist(err) {
		t.Errorf("render --rootfs-only wrote a manifest (%v)", err)
	}

	// The target exists: refused without --overwrite, replaced with it.
	c.MustFail(254, "--overwrite", "image", "extract", id, ext)
	os.WriteFile(filepath.Join(ext, "stale"), []byte("x"), 0o644)
	c.MustRun("image", "extract", "--overwrite", id, ext)
	if _, err := os.Stat(filepath.Join(ext, "stale")); !os.IsNotExist(err) {
		t.Errorf("extract --overwrite kept an old file (%v)", err)
	}
	checkMetadata(t, "image extract --overwrite", filepath.Join(ext, "rootfs"))
	if ents, _ := os.ReadDir(out); len(ents) != 2 {
		t.Errorf("%s holds %d entries, want 2 (no temporary copies left)", out, len(ents))
	}
	if out := c.MustRun("image", "verify", id); !strings.Contains(out, "ok") {
		t.Errorf("image verify printed %q", out)
	}
}

func TestImageCatManifestAndExport(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	a := smallACI("example.com/cat", "3.1", "x")
	a.Image.Annotations = map[string]string{"authors": "rkt tests"}
	p := writeACI(t, dir, "cat.aci", a)
	id := fetchOK(t, c, p)[0]
	manifest, _ := testutils.ManifestJSON(a.Image)

	out := c.MustRun("image", "cat-manifest", "--pretty-print=false", id)
	if strings.TrimSpace(out) != string(manifest) {
		t.Errorf("cat-manifest --pretty-print=false = %s, want %s", out, manifest)
	}
	pretty := c.MustRun("image", "cat-manifest", "example.com/cat:3.1")
	var indented bytes.Buffer
	json.Indent(&indented, manifest, "", "\t")
	if strings.TrimSpace(pretty) != indented.String() {
		t.Errorf("cat-manifest = %s, want %s", pretty, indented.String())
	}

	exported := filepath.Join(dir, "out.aci")
	c.MustRun("image", "export", id, exported)
	orig, _ := os.ReadFile(p)
	if got, err := os.ReadFile(exported); err != nil || !bytes.Equal(got, orig) {
		t.Errorf("exported image differs from the fetched file (%v)", err)
	}
	c.MustFail(254, "--overwrite", "image", "export", id, exported)
	os.WriteFile(exported, []byte("old"), 0o644)
	c.MustRun("image", "export", "--overwrite", id, exported)
	if got, _ := os.ReadFile(exported); !bytes.Equal(got, orig) {
		t.Error("export --overwrite did not replace the file")
	}
	c.MustFail(254, "example.com/nothing", "image", "export", "example.com/nothing", filepath.Join(dir, "x.aci"))
	c.MustFail(254, "", "image", "cat-manifest", "sha512-000000000000")
}

func TestImageList(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	small := smallACI("example.com/zeta", "1", "s")
	large := testutils.ACI{Image: testutils.Image{Name: "example.com/alpha"},
		Entries: []testutils.Entry{testutils.File("big", 0o644, string(pseudoRandom(300<<10, 2)))}}
	newer := smallACI("example.com/zeta", "2", "newer")
	var ids []string
	for i, a := range []testutils.ACI{small, large, newer} {
		ids = append(ids, fetchOK(t, c, "--full", writeACI(t, dir, fmt.Sprint(i, ".aci"), a))[0])
		time.Sleep(10 * time.Millisecond) // distinct import times
	}

	_, imgs := listImages(t, c)
	if len(imgs) != 3 {
		t.Fatalf("%d images listed, want 3", len(imgs))
	}
	for i, img := range imgs { // default order: import time
		if img.ID != ids[i] {
			t.Errorf("image %d is %s, want %s (sorted by import time)", i, img.ID, ids[i])
		}
	}
	if imgs[0].Latest || !imgs[1].Latest || !imgs[2].Latest {
		t.Errorf("latest flags %v %v %v, want false true true", imgs[0].Latest, imgs[1].Latest, imgs[2].Latest)
	}
	if imgs[1].Size < 300<<10 || imgs[1].BlobSize <= 0 {
		t.Errorf("sizes of the large image: %d unpacked, %d blob", imgs[1].Size, imgs[1].BlobSize)
	}

	table := c.MustRun("image", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NAME") {
		t.Fatalf("image list table:\n%s", table)
	}
	if !strings.Contains(table, ids[0][:19]+" ") || strings.Contains(table, ids[0][:20]) {
		t.Errorf("table does not show the 12-hex IDs:\n%s", table)
	}
	noLegend := c.MustRun("image", "list", "--no-legend", "--fields=id,name", "--sort=name", "--order=desc")
	lines = strings.Split(strings.TrimSpace(noLegend), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "example.com/zeta") || !strings.Contains(lines[2], "example.com/alpha") ||
		strings.Contains(noLegend, "ID") || strings.Contains(noLegend, "iB") {
		t.Errorf("--no-legend --fields=id,name --sort=name --order=desc:\n%s", noLegend)
	}
	full := c.MustRun("image", "list", "--full", "--no-legend", "--fields=id,size", "--sort=size")
	lines = strings.Split(strings.TrimSpace(full), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], ids[1]) || !strings.Contains(lines[2], fmt.Sprint(imgs[1].Size)) {
		t.Errorf("--full --sort=size:\n%s", full)
	}
	var pretty []listedImage
	if out := c.MustRun("image", "list", "--format=json-pretty"); json.Unmarshal([]byte(out), &pretty) != nil || len(pretty) != 3 || !strings.Contains(out, "\n\t") {
		t.Errorf("--format=json-pretty:\n%s", out)
	}
	c.MustFail(254, "--fields", "image", "list", "--fields=id,colour")
	c.MustFail(254, "--sort", "image", "list", "--sort=latest")
	c.MustFail(254, "--order", "image", "list", "--order=sideways")
	c.MustFail(254, "--format", "image", "list", "--format=yaml")

	// An empty store lists nothing, even before anything created it.
	c2 := newImageCtx(t)
	if _, imgs := listImages(t, c2); len(imgs) != 0 {
		t.Errorf("empty store lists %v", imgs)
	}
	if out := c2.MustRun("image", "list", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Errorf("empty store, --no-legend: %q", out)
	}
}

// TestImageIDPrefixes: any unique prefix works; an ambiguous one is refused
// with the candidates listed.
func TestImageIDPrefixes(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	byPrefix := map[string]testutils.ACI{}
	var pair [2]testutils.ACI
	for i := 0; ; i++ {
		a := smallACI("example.com/prefix", fmt.Sprint(i), fmt.Sprint("body ", i))
		id := imageID(t, a)
		if prev, ok := byPrefix[id[:9]]; ok {
			pair = [2]testutils.ACI{prev, a}
			break
		}
		byPrefix[id[:9]] = a
	}
	var ids [2]string
	for i, a := range pair {
		ids[i] = fetchOK(t, c, "--full", writeACI(t, dir, fmt.Sprint(i, ".aci"), a))[0]
	}
	prefix := ids[0][:9]
	r := c.MustFail(254, "ambiguous", "image", "cat-manifest", prefix)
	for _, id := range ids {
		if !strings.Contains(r.Stderr, id[:13]) {
			t.Errorf("ambiguity error does not list %s: %s", id[:13], r.Stderr)
		}
	}
	n := 9
	for ids[0][:n] == ids[1][:n] {
		n++
	}
	for _, id := range ids {
		for _, p := range []string{id[:n], id[:19], id} {
			if out := c.MustRun("image", "list", "--no-legend", "--fields=id", "--full"); !strings.Contains(out, id) {
				t.Fatalf("image list lacks %s", id)
			}
			m := c.MustRun("image", "cat-manifest", "--pretty-print=false", p)
			if !strings.Contains(m, "example.com/prefix") {
				t.Errorf("cat-manifest %s: %s", p, m)
			}
		}
	}
	c.MustFail(254, "sha512-", "image", "cat-manifest", "sha512-a")
	c.MustFail(254, "", "image", "rm", prefix)
	if _, imgs := listImages(t, c); len(imgs) != 2 {
		t.Errorf("rm of an ambiguous prefix removed something: %d images left", len(imgs))
	}
}

func TestImageRmAndGC(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	empty := snapshotDir(t, c.Dir)
	fetchOK(t, c, writeACI(t, dir, "seed.aci", smallACI("example.com/seed", "1", "seed")))
	seeded := captureStore(t, c)

	// A dependency-rendered image: rm must remove its own and its rendered tree.
	base := smallACI("example.com/base", "1", "base")
	top := testutils.ACI{Image: testutils.Image{Name: "example.com/top",
		Dependencies: []testutils.Dependency{{ImageName: "example.com/base"}}},
		Entries: []testutils.Entry{testutils.File("app", 0o755, "app")}}
	writeACI(t, dir, "base.aci", base)
	topID := fetchOK(t, c, "--full", writeACI(t, dir, "top.aci", top))[0]
	baseID := imageID(t, base)
	trees, _ := os.ReadDir(filepath.Join(c.Dir, "cas", "tree"))
	if len(trees) != 4 {
		t.Errorf("%d trees after fetching seed, base and top, want 4 (top has its own and a rendered one)", len(trees))
	}
	out := c.MustRun("image", "rm", topID[:19], "example.com/base")
	if !strings.Contains(out, "successfully removed image "+topID) || !strings.Contains(out, baseID) {
		t.Errorf("image rm printed %q", out)
	}
	after := captureStore(t, c)
	for _, d := range snapshotDiff(seeded.files, after.files) {
		if !strings.HasPrefix(d, "added cas/blob/sha512/") || !strings.HasSuffix(d, "(d---------)") { // empty fan-out dirs may stay
			t.Errorf("after image rm: %s", d)
		}
	}
	if after.list != seeded.list {
		t.Errorf("image list after rm: %s, want %s", after.list, seeded.list)
	}
	r := c.MustFail(254, "example.com/gone", "image", "rm", "example.com/gone", "example.com/seed")
	if !strings.Contains(r.Stdout, "successfully removed") {
		t.Errorf("rm went on after an unknown image: %s", describeResult(nil, r))
	}

	// gc: fresh images stay; with no grace period everything goes,
	// leftovers of killed processes included.
	fetchOK(t, c, writeACI(t, dir, "a.aci", smallACI("example.com/a", "1", "a")))
	fetchOK(t, c, writeACI(t, dir, "top.aci", top))
	if out := c.MustRun("image", "gc"); strings.Contains(out, "removed") {
		t.Errorf("image gc removed fresh images: %s", out)
	}
	if _, imgs := listImages(t, c); len(imgs) != 3 {
		t.Errorf("%d images after default gc, want 3", len(imgs))
	}
	orphan := filepath.Join(c.Dir, "cas", "tree", "sha512-"+strings.Repeat("0", 64))
	os.MkdirAll(filepath.Join(orphan, "rootfs"), 0o755)
	os.MkdirAll(filepath.Join(c.Dir, "cas", "tmp", "import-dead", "tree"), 0o700)
	out = c.MustRun("image", "gc", "--grace-period=0s")
	if _, imgs := listImages(t, c); len(imgs) != 0 {
		// The dependency of an image removed in the same pass stays.
		t.Errorf("%d images left after one gc --grace-period=0s (%v); gc printed:\n%s", len(imgs), imgs, out)
		c.MustRun("image", "gc", "--grace-period=0s")
	}
	for _, sub := range []string{"tree", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(c.Dir, "cas", sub)); len(ents) != 0 {
			t.Errorf("cas/%s not empty after gc: %d entries", sub, len(ents))
		}
	}
	for p, v := range snapshotDir(t, c.Dir) {
		if _, ok := empty[p]; !ok && v != "d---------" && p != "cas/db/index.db" {
			t.Errorf("left after gc: %s (%s)", p, v)
		}
	}
}

func TestImageVerifyDetectsTampering(t *testing.T) {
	c := newImageCtx(t)
	a := metadataACI()
	id := fetchOK(t, c, "--full", writeACI(t, t.TempDir(), "meta.aci", a))[0]
	c.MustRun("image", "verify", id)

	f := filepath.Join(c.Dir, "cas", "tree", id, "rootfs", "data", "exec")
	fi, _ := os.Stat(f)
	if err := os.WriteFile(f, []byte("EXEC"), 0); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(f, fi.ModTime(), fi.ModTime())
	r := c.MustFail(254, id[:19], "image", "verify", id)
	if !strings.Contains(r.Stderr, "digest") {
		t.Errorf("verify of a tampered tree: %s", r.Stderr)
	}
	c.MustFail(254, id[:19], "image", "render", id, filepath.Join(t.TempDir(), "out"))
	// Fetching again repairs nothing by itself (the tree has its marker),
	// but rm + fetch does.
	c.MustRun("image", "rm", id)
	fetchOK(t, c, writeACI(t, t.TempDir(), "meta.aci", a))
	c.MustRun("image", "verify", id)
}
