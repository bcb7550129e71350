package main

// The benchmarks below take rkt's import path apart, on the same image
// fetchbench uses, to find where the time goes:
//
//	go test ./bench/fetchbench -run '^$' -bench . -benchtime 3x
//
// FETCHBENCH_SIZE_MB (default 200) sets the image size and FETCHBENCH_DIR
// (default /var/tmp) where the image and the stores go;
// FETCHBENCH_DROP_CACHES=1 (root only) drops the caches before each
// iteration, as fetchbench -drop-caches.

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/tarx"
)

// TestStageCommit checks that rkt's store imports the generated images and
// gives them the ID fetchbench expects.
func TestStageCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	im, err := WriteImages(ctx, dir, GenOptions{Size: 3e6, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{im.Plain, im.Gzip} {
		s, err := imagestore.Open(filepath.Join(t.TempDir(), "cas"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stage(ctx, file, imagestore.ImportOptions{})
		if err != nil {
			t.Fatalf("staging %s: %v", file, err)
		}
		if err := st.Commit(ctx); err != nil {
			t.Fatalf("committing %s: %v", file, err)
		}
		info, err := s.Get(im.ID)
		if err != nil {
			t.Fatalf("%s imported under another ID than %s: %v", file, im.ID, err)
		}
		if info.UnpackedSize != im.Uncompressed || info.Name != "bench.rkt/big" {
			t.Errorf("index row %+v", info)
		}
		root, err := s.TreeRootfs(info)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		if n != im.Files {
			t.Errorf("tree of %s has %d files, want %d", file, n, im.Files)
		}
	}
}

// benchImage is generated once per test binary run, for all benchmarks.
var benchImage = sync.OnceValues(func() (Images, error) {
	size := int64(200)
	if v := os.Getenv("FETCHBENCH_SIZE_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return Images{}, fmt.Errorf("FETCHBENCH_SIZE_MB=%q: want a number of MB", v)
		}
		size = n
	}
	dir, err := os.MkdirTemp(benchDir(), "fetchbench-go-")
	if err != nil {
		return Images{}, err
	}
	benchWork = dir
	return WriteImages(context.Background(), dir, GenOptions{Size: size * 1e6, Seed: 1})
})

var benchWork string

func benchDir() string {
	if d := os.Getenv("FETCHBENCH_DIR"); d != "" {
		return d
	}
	return "/var/tmp"
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchWork != "" {
		os.RemoveAll(benchWork)
		syscall.Sync()
	}
	os.Exit(code)
}

func image(b *testing.B, gz bool) (string, Images) {
	b.Helper()
	im, err := benchImage()
	if err != nil {
		b.Fatalf("writing the benchmark image: %v", err)
	}
	b.SetBytes(im.Uncompressed) // MB/s over the uncompressed size
	if gz {
		return im.Gzip, im
	}
	return im.Plain, im
}

var formats = []struct {
	name string
	gz   bool
}{{"gzip", true}, {"plain", false}}

// BenchmarkStageCommit is what rkt fetch does with a local file, without
// the process start, CLI and signature handling.
func BenchmarkStageCommit(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) { stageBench(b, f.gz, true) })
	}
}

// BenchmarkStage leaves out Commit (syncfs, renames, index).
func BenchmarkStage(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) { stageBench(b, f.gz, false) })
	}
}

func stageBench(b *testing.B, gz, commit bool) {
	file, _ := image(b, gz)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s, err := imagestore.Open(filepath.Join(keptDir(b, "store-"), "cas"))
		if err != nil {
			b.Fatal(err)
		}
		settle(b, file)
		b.StartTimer()
		st, err := s.Stage(ctx, file, imagestore.ImportOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if commit {
			if err := st.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if !commit {
			// Keep the staged tree (Abort would delete it): see keptDir.
			os.Rename(filepath.Join(filepath.Dir(st.BlobFile()), "tree"), filepath.Join(keptDir(b, "staged-"), "tree"))
		}
		st.Abort()
		b.StartTimer()
	}
}

// keptDir makes an output directory removed only when the test binary
// ends: deleting between runs slows file creation on ext4 without a
// journal (see runner in measure.go).
func keptDir(b *testing.B, prefix string) string {
	dir, err := os.MkdirTemp(benchWork, prefix)
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// settle flushes dirty pages left by the previous iteration, untimed, and
// with FETCHBENCH_DROP_CACHES=1 drops the caches and reads file back in,
// as fetchbench -drop-caches does.
func settle(b *testing.B, file string) {
	r := runner{dropCaches: os.Getenv("FETCHBENCH_DROP_CACHES") == "1"}
	if err := r.settle(file); err != nil {
		b.Fatal(err)
	}
}

// The component benchmarks time one piece of the pipeline each.

func openFile(b *testing.B, file string) *os.File {
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func decompressed(b *testing.B, f *os.File, gz bool) io.Reader {
	if !gz {
		return f
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	return zr
}

// BenchmarkRead is the floor: read the file from the page cache, and
// decompress it if gzip.
func BenchmarkRead(b *testing.B) {
	for _, fm := range formats {
		b.Run(fm.name, func(b *testing.B) {
			file, _ := image(b, fm.gz)
			buf := make([]byte, 256<<10)
			for b.Loop() {
				f := openFile(b, file)
				if _, err := io.CopyBuffer(io.Discard, decompressed(b, f, fm.gz), buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkHash times the two hashes of the import: SHA-512 over the
// stream (the image ID) and SHA-256 over file contents (the tree digest).
func BenchmarkHash(b *testing.B) {
	for _, h := range []struct {
		name string
		new  func() io.Writer
	}{{"sha512", func() io.Writer { return sha512.New() }}, {"sha256", func() io.Writer { return sha256.New() }}} {
		b.Run(h.name, func(b *testing.B) {
			file, _ := image(b, false)
			buf := make([]byte, 256<<10)
			for b.Loop() {
				f := openFile(b, file)
				if _, err := io.CopyBuffer(h.new(), f, buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkCopyBlob is the copy of the image into the store (as fetched),
// with its fsync.
func BenchmarkCopyBlob(b *testing.B) {
	for _, fm := range formats {
		b.Run(fm.name, func(b *testing.B) {
			file, _ := image(b, fm.gz)
			dst := filepath.Join(benchWork, "blob")
			for b.Loop() {
				b.StopTimer()
				settle(b, file)
				b.StartTimer()
				in := openFile(b, file)
				out, err := os.Create(dst)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(out, in); err != nil {
					b.Fatal(err)
				}
				if err := out.Sync(); err != nil {
					b.Fatal(err)
				}
				in.Close()
				out.Close()
				b.StopTimer()
				os.Remove(dst)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkExtract is the tar walk into package tarx (which hashes file
// contents for the tree digest), without the stream hash, the blob copy
// and the final sync.
func BenchmarkExtract(b *testing.B) {
	for _, fm := range formats {
		b.Run(fm.name, func(b *testing.B) {
			file, _ := image(b, fm.gz)
			for b.Loop() {
				b.StopTimer()
				root := keptDir(b, "tree-")
				settle(b, file)
				b.StartTimer()
				f := openFile(b, file)
				if err := extract(decompressed(b, f, fm.gz), root); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

func extract(r io.Reader, root string) error {
	ex, err := tarx.New(root, tarx.DefaultLimits, os.Geteuid() == 0)
	if err != nil {
		return err
	}
	defer ex.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Name == "manifest" || hdr.Name == "rootfs/" {
			continue
		}
		if err := ex.Add(hdr.Name[len("rootfs/"):], hdr, tr); err != nil {
			return err
		}
	}
	_, err = ex.Finish()
	return err
}
