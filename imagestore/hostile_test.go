package imagestore_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/tests/testutils"
)

func okEntries() []testutils.Entry {
	return []testutils.Entry{testutils.Dir("etc", 0o755), testutils.File("etc/ok", 0o644, strings.Repeat("ok\n", 4000))}
}

func aciBytes(t *testing.T, a testutils.ACI) []byte {
	t.Helper()
	if a.Image.Name == "" && a.Manifest == nil {
		a.Image = testutils.Image{Name: "example.com/hostile"}
	}
	b, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withEntries(es ...testutils.Entry) testutils.ACI {
	return testutils.ACI{Entries: append(okEntries(), es...)}
}

func raw(name string, typ byte, mode int64, link string) testutils.Entry {
	return testutils.Entry{Header: tar.Header{Name: name, Typeflag: typ, Mode: mode, Linkname: link}}
}

// octal fills a tar numeric field.
func octal(dst []byte, v int64) {
	copy(dst, fmt.Sprintf("%0*o", len(dst)-1, v))
	dst[len(dst)-1] = 0
}

// sparseBomb is a plain-tar ACI with one old-GNU sparse file of realSize
// bytes that are all a hole: a few KiB of archive that unpack to realSize
// bytes on disk, since extraction writes the zeros.
// tinyFiles are n one-byte files.
func tinyFiles(n int) []testutils.Entry {
	es := []testutils.Entry{testutils.Dir("d", 0o755)}
	for i := 0; i < n; i++ {
		es = append(es, testutils.File(fmt.Sprintf("d/f%05d", i), 0o644, "x"))
	}
	return es
}

func sparseBomb(t *testing.T, realSize int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	m, err := testutils.ManifestJSON(testutils.Image{Name: "example.com/sparse"})
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(&buf)
	for _, e := range []testutils.Entry{testutils.File("manifest", 0o644, string(m)), testutils.Dir("rootfs", 0o755)} {
		e.Header.ModTime = testutils.FixedTime
		if err := tw.WriteHeader(&e.Header); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.Body)
	}
	tw.Flush()
	h := make([]byte, 512)
	copy(h[0:100], "rootfs/hole")
	octal(h[100:108], 0o644)
	octal(h[108:116], 0)
	octal(h[116:124], 0)
	octal(h[124:136], 0) // no stored data: the whole file is a hole
	octal(h[136:148], testutils.FixedTime.Unix())
	h[156] = tar.TypeGNUSparse
	copy(h[257:265], "ustar  \x00")
	octal(h[483:495], realSize)
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

// TestStageRefusesHostileImages: each image is refused with an error of
// the right class that names what is wrong, and the store (seeded with one
// good image) is left exactly as it was, with nothing written outside.
func TestStageRefusesHostileImages(t *testing.T) {
	s := newStore(t)
	importFile(t, s, writeImage(t, simpleACI("example.com/seed", "1", "seed")).path, imagestore.ImportOptions{})
	outside := t.TempDir()

	good := withEntries()
	gz := good
	gz.Compression = testutils.CompressionGzip
	gzBytes := aciBytes(t, gz)
	plainBytes := aciBytes(t, good)
	corrupt := func(b []byte) []byte {
		b = bytes.Clone(b)
		for i := len(b) / 2; i < len(b)/2+32; i++ {
			b[i] ^= 0xa5
		}
		return b
	}
	compressed := func(c testutils.Compression) []byte {
		a := good
		a.Compression = c
		return aciBytes(t, a)
	}
	bombZeros := testutils.ACI{Entries: []testutils.Entry{testutils.File("zeros", 0o644, string(make([]byte, 24<<20)))},
		Compression: testutils.CompressionZstd}
	xattr := testutils.File("etc/x", 0o644, "x")
	xattr.Header.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
	bigManifest, _ := testutils.ManifestJSON(testutils.Image{Name: "example.com/big"})
	bigManifest = append(bigManifest[:len(bigManifest)-1], []byte(`,"annotations":[{"name":"x","value":"`+strings.Repeat("a", 1<<20)+`"}]}`)...)

	cases := []struct {
		desc  string
		data  []byte
		class error
		want  string
	}{
		{"empty file", nil, aci.ErrInvalid, "empty"},
		{"not an archive", bytes.Repeat([]byte("garbage!"), 200), aci.ErrInvalid, ""},
		{"corrupt gzip", corrupt(gzBytes), aci.ErrInvalid, ""}, // may surface as a garbled manifest first
		{"truncated gzip", gzBytes[:len(gzBytes)/2], aci.ErrInvalid, "gzip"},
		{"gzip header only", gzBytes[:10], aci.ErrInvalid, "gzip"},
		{"truncated bzip2", func() []byte { b := compressed(testutils.CompressionBzip2); return b[:len(b)/2] }(), aci.ErrInvalid, "bzip2"},
		{"corrupt bzip2", corrupt(compressed(testutils.CompressionBzip2)), aci.ErrInvalid, "bzip2"},
		{"truncated xz", func() []byte { b := compressed(testutils.CompressionXz); return b[:len(b)/2] }(), aci.ErrInvalid, "xz"},
		{"corrupt xz", corrupt(compressed(testutils.CompressionXz)), aci.ErrInvalid, "xz"},
		{"truncated zstd", func() []byte { b := compressed(testutils.CompressionZstd); return b[:len(b)/2] }(), aci.ErrInvalid, "zstd"},
		{"corrupt zstd", corrupt(compressed(testutils.CompressionZstd)), aci.ErrInvalid, "zstd"},
		{"truncated tar", plainBytes[:len(plainBytes)-2048], aci.ErrInvalid, "truncated"},
		{"tar cut in a header", plainBytes[:1024+100], aci.ErrInvalid, ""},
		{"missing manifest", aciBytes(t, testutils.ACI{Entries: okEntries(), OmitManifest: true}), aci.ErrInvalid, "no manifest"},
		{"manifest not JSON", aciBytes(t, testutils.ACI{Manifest: []byte("{nope"), Entries: okEntries()}), aci.ErrInvalid, "JSON"},
		{"pod manifest", aciBytes(t, testutils.ACI{Manifest: []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[]}`), Entries: okEntries()}), aci.ErrInvalid, "PodManifest"},
		{"unknown version", aciBytes(t, testutils.ACI{Manifest: []byte(`{"acKind":"ImageManifest","acVersion":"7.0.0","name":"example.com/x"}`), Entries: okEntries()}), aci.ErrInvalid, "7.0.0"},
		{"manifest too large", aciBytes(t, testutils.ACI{Manifest: bigManifest}), aci.ErrInvalid, "manifest"},
		{"manifest is a symlink", aciBytes(t, testutils.ACI{OmitManifest: true, Entries: []testutils.Entry{testutils.Symlink("manifest", "/etc/passwd")}}), aci.ErrInvalid, "manifest"},
		{"two manifests", aciBytes(t, withEntries(testutils.File("manifest", 0o644, `{}`))), aci.ErrInvalid, "duplicate"},
		{"entry outside rootfs", aciBytes(t, withEntries(raw("evil", tar.TypeReg, 0o644, ""))), aci.ErrInvalid, "evil"},
		{"duplicate entry", aciBytes(t, withEntries(testutils.File("etc/dup", 0o644, "1"), testutils.File("etc/dup", 0o644, "2"))), aci.ErrInvalid, "etc/dup"},
		{"dot-dot", aciBytes(t, withEntries(testutils.File("../../../../escape", 0o644, "x"))), aci.ErrInvalid, "escape"},
		{"absolute", aciBytes(t, withEntries(raw("rootfs//abs", tar.TypeReg, 0o644, ""))), aci.ErrInvalid, "/abs"},
		{"under a symlinked parent", aciBytes(t, withEntries(testutils.Symlink("lnk", outside), testutils.File("lnk/pwned", 0o644, "x"))), aci.ErrInvalid, "lnk/pwned"},
		{"symlink out", aciBytes(t, withEntries(testutils.Symlink("etc/up", "../../../outside"))), aci.ErrInvalid, "etc/up"},
		{"hardlink out", aciBytes(t, withEntries(raw("rootfs/hl", tar.TypeLink, 0o644, "../../etc/passwd"))), aci.ErrInvalid, "hl"},
		{"hardlink absolute", aciBytes(t, withEntries(raw("rootfs/hl", tar.TypeLink, 0o644, "/etc/passwd"))), aci.ErrInvalid, "hl"},
		{"char device", aciBytes(t, withEntries(raw("rootfs/dev/mem", tar.TypeChar, 0o600, ""))), aci.ErrInvalid, "dev/mem"},
		{"block device", aciBytes(t, withEntries(raw("rootfs/sda", tar.TypeBlock, 0o600, ""))), aci.ErrInvalid, "sda"},
		{"setuid", aciBytes(t, withEntries(testutils.File("bin/su", 0o4755, "x"))), aci.ErrInvalid, "bin/su"},
		{"setgid", aciBytes(t, withEntries(testutils.File("bin/sg", 0o2755, "x"))), aci.ErrInvalid, "bin/sg"},
		{"trusted xattr", aciBytes(t, withEntries(xattr)), aci.ErrInvalid, "trusted.overlay"},
		{"decompression bomb", aciBytes(t, bombZeros), imagestore.ErrTooLarge, "more than"},
		{"sparse-file bomb", sparseBomb(t, 24<<20), imagestore.ErrTooLarge, "more than"},
		// 3000 one-byte files: 3 MB of stream, 3000 bytes declared, but a
		// block each on disk.
		{"block per tiny file", aciBytes(t, testutils.ACI{Entries: tinyFiles(3000), Compression: testutils.CompressionGzip}), imagestore.ErrTooLarge, "of disk"},
	}
	before := snapshot(t, s)
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "hostile.aci")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := s.Stage(context.Background(), p, imagestore.ImportOptions{MaxSize: 10 << 20})
			if err == nil {
				var unpacked int64
				filepath.Walk(filepath.Join(filepath.Dir(st.BlobFile()), "tree"), func(_ string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode().IsRegular() {
						unpacked += fi.Size()
					}
					return nil
				})
				st.Abort()
				t.Fatalf("hostile image of %d bytes accepted; its tree holds %d bytes of files (MaxSize 10 MiB)", len(c.data), unpacked)
			}
			if !errors.Is(err, c.class) {
				t.Errorf("error %q is not of class %q", err, c.class)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if d := diffSnapshots(before, snapshot(t, s)); len(d) > 0 {
				t.Errorf("store changed: %v", d)
			}
			if ents := dirNames(t, outside); len(ents) > 0 {
				t.Errorf("written outside the store: %v", ents)
			}
		})
	}
}
