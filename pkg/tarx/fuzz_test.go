package tarx_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rkt/rkt/pkg/tarx"
)

// tarOf writes headers (with bodies for regular files) as a tar stream.
func tarOf(f *testing.F, es ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		h.Name = e.name
		if err := tw.WriteHeader(&h); err != nil {
			f.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzExtract feeds arbitrary tar streams to the extractor: nothing is
// ever written outside the root, no device node or setuid file appears
// in it, and when Finish succeeds Digest recomputes its digest from the
// tree alone.
func FuzzExtract(f *testing.F) {
	f.Add(tarOf(f, dir("d", 0o755), file("d/f", 0o644, "content"), symlink("d/l", "f"), hardlink("d/h", "d/f")))
	f.Add(tarOf(f, file("../escape", 0o644, "x")))
	f.Add(tarOf(f, symlink("l", "/"), file("l/pwned", 0o644, "x")))
	f.Add(tarOf(f, symlink("a", "b"), symlink("b", "../../out")))
	f.Add(tarOf(f, file("su", 0o4755, "x"), entry{"dev", tar.Header{Typeflag: tar.TypeChar, Mode: 0o600}, ""}))
	f.Add(tarOf(f, file("zeros", 0o644, string(make([]byte, 3*4096+5)))))
	f.Add(tarOf(f, file("f", 0o644, "1"), file("f", 0o644, "2")))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, err := os.MkdirTemp("", "tarx-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
		os.Mkdir(root, 0o755)
		os.Mkdir(outside, 0o755)
		ex, err := tarx.New(root, tarx.Limits{MaxEntries: 64, MaxNameLen: 256, MaxXattrLen: 1024}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		tr := tar.NewReader(bytes.NewReader(data))
		ok := true
		for n := 0; n < 64; n++ {
			hdr, err := tr.Next()
			if err != nil {
				ok = err == io.EOF
				break
			}
			if hdr.Size > 1<<20 {
				ok = false // the store bounds sizes; keep the fuzzer fast
				break
			}
			if err := ex.Add(hdr.Name, hdr, tr); err != nil {
				ok = false
				break
			}
		}
		var digest string
		if ok {
			if digest, err = ex.Finish(); err != nil {
				ok = false
			}
		}
		ents, _ := os.ReadDir(outside)
		if len(ents) > 0 {
			t.Fatalf("written outside the root: %v", ents)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Fatalf("written beside the root: %v", ents)
		}
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if fi.Mode()&(os.ModeDevice|os.ModeCharDevice) != 0 {
				t.Fatalf("device node %s extracted", p)
			}
			if fi.Mode().IsRegular() && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
				t.Fatalf("setuid/setgid file %s extracted", p)
			}
			return nil
		})
		if ok {
			if d, err := tarx.Digest(root); err != nil || d != digest {
				t.Fatalf("Digest = %s, %v; Finish said %s", d, err, digest)
			}
		}
	})
}
