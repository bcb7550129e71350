package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func tarDigest(t *testing.T, o GenOptions) string {
	t.Helper()
	h := sha512.New()
	if err := NewPlan(o).WriteTar(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestPlanIsDeterministic(t *testing.T) {
	o := GenOptions{Size: 3e6, Seed: 7}
	a, b := tarDigest(t, o), tarDigest(t, o)
	if a != b {
		t.Fatalf("same options gave different images: %s vs %s", a[:16], b[:16])
	}
	o.Seed = 8
	if c := tarDigest(t, o); c == a {
		t.Fatal("another seed gave the same image")
	}
}

func TestPlanMix(t *testing.T) {
	o := GenOptions{Size: 200e6, Seed: 1}
	p := NewPlan(o)
	if n := len(p.Files); n < 1500 || n > 2500 {
		t.Errorf("%d files, want about 2000", n)
	}
	if got := p.ContentBytes(); got < o.Size-10 || got > o.Size {
		t.Errorf("content is %d bytes, want %d", got, o.Size)
	}
	var random, text, smallest, largest int64
	smallest = 1 << 62
	names := map[string]bool{}
	for _, f := range p.Files {
		if f.kind == kindRandom {
			random += f.size
		} else {
			text += f.size
		}
		smallest, largest = min(smallest, f.size), max(largest, f.size)
		if names[f.name] {
			t.Errorf("duplicate file %s", f.name)
		}
		names[f.name] = true
	}
	if d := random - text; d < -100 || d > 100 {
		t.Errorf("random %d bytes vs text %d bytes: want half each", random, text)
	}
	if smallest < 512 || largest > 20<<20 || largest < 5<<20 {
		t.Errorf("file sizes from %d to %d, want about 1 KB to 20 MB", smallest, largest)
	}
	deepest := 0
	for _, d := range p.Dirs {
		deepest = max(deepest, depthOf(d))
	}
	if len(p.Dirs) < 50 || deepest < 4 {
		t.Errorf("%d directories at most %d deep: want a nested tree", len(p.Dirs), deepest)
	}
}

func TestWriteImages(t *testing.T) {
	dir := t.TempDir()
	im, err := WriteImages(context.Background(), dir, GenOptions{Size: 4e6, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(im.Plain)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(plain)) != im.Uncompressed {
		t.Errorf("plain image is %d bytes, WriteImages says %d", len(plain), im.Uncompressed)
	}
	sum := sha512.Sum512(plain)
	if want := "sha512-" + hex.EncodeToString(sum[:32]); im.ID != want {
		t.Errorf("ID %s, want %s", im.ID, want)
	}
	gz, err := os.ReadFile(im.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unz, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unz, plain) {
		t.Fatal("the gzip image does not decompress to the plain one")
	}
	// Half the bytes are incompressible, the other half compress well.
	if r := float64(len(gz)) / float64(len(plain)); r < 0.5 || r > 0.85 {
		t.Errorf("gzip ratio %.2f, want between 0.5 and 0.85 for a half-random image", r)
	}
	tr := tar.NewReader(bytes.NewReader(plain))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "manifest" {
		t.Fatalf("first entry %v, %v; want the manifest", hdr, err)
	}
	if m, _ := io.ReadAll(tr); string(m) != Manifest {
		t.Errorf("manifest %q", m)
	}
	files := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			files++
		}
		if len(hdr.Name) < 7 || hdr.Name[:7] != "rootfs/" {
			t.Errorf("entry %s outside rootfs/", hdr.Name)
		}
	}
	if files != im.Files {
		t.Errorf("%d regular files in rootfs, WriteImages says %d", files, im.Files)
	}
}

func TestTextCompresses(t *testing.T) {
	buf := make([]byte, 1<<20)
	newTextGen(5).fill(buf)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(buf)
	zw.Close()
	if r := float64(z.Len()) / float64(len(buf)); r < 0.2 || r > 0.6 {
		t.Errorf("text compresses to %.2f of its size, want text-like (0.2 to 0.6)", r)
	}
	if bytes.Count(buf, []byte("\n")) < 10000 {
		t.Error("text has too few lines")
	}
}
