package main

import (
	"bufio"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// BenchmarkPipeline rebuilds the shape of imagestore's import (read the
// file, copy it as the blob, decompress, SHA-512 the stream, extract with
// tarx) to measure what moving work between goroutines would change,
// without touching imagestore:
//
//	inline:   SHA-512 on the decompressing goroutine (as imagestore does)
//	hasher:   SHA-512 on a goroutine of its own
//	noblob:   inline, without the copy of the image into the store
//	nohash:   no SHA-512 at all (the floor for these shapes)
//
// The tree is not synced (BenchmarkStageCommit includes Commit's syncfs).
func BenchmarkPipeline(b *testing.B) {
	shapes := []struct {
		name           string
		hash, separate bool
		blob           bool
	}{
		{"inline", true, false, true},
		{"hasher", true, true, true},
		{"noblob", true, false, false},
		{"nohash", false, false, true},
	}
	for _, f := range formats {
		for _, s := range shapes {
			b.Run(f.name+"/"+s.name, func(b *testing.B) {
				file, _ := image(b, f.gz)
				for b.Loop() {
					b.StopTimer()
					dir := keptDir(b, "pipe-")
					root := filepath.Join(dir, "rootfs")
					if err := os.Mkdir(root, 0o755); err != nil {
						b.Fatal(err)
					}
					blob := ""
					if s.blob {
						blob = filepath.Join(dir, "blob")
					}
					settle(b, file)
					b.StartTimer()
					var h hash.Hash
					if s.hash {
						h = sha512.New()
					}
					if err := pipeline(file, f.gz, root, blob, h, s.separate); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// chunk is a buffer shared by the consumers of one read; the last one to
// finish with it returns it to the pool.
type chunk struct {
	buf  []byte
	refs atomic.Int32
}

func pipeline(file string, gz bool, root, blob string, h hash.Hash, separate bool) error {
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	var r io.Reader = in
	if blob != "" {
		out, err := os.Create(blob)
		if err != nil {
			return err
		}
		defer out.Close()
		r = io.TeeReader(in, out)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var dr io.Reader = br
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		dr = zr
	}
	const nbuf = 8
	free := make(chan *chunk, nbuf)
	for range nbuf {
		free <- &chunk{buf: make([]byte, 256<<10)}
	}
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	toTar := make(chan *chunk, nbuf)
	var toHash chan *chunk
	var wg sync.WaitGroup
	if separate {
		toHash = make(chan *chunk, nbuf)
		wg.Go(func() {
			for c := range toHash {
				h.Write(c.buf)
				release(c)
			}
		})
	}
	var readErr error
	go func() {
		defer close(toTar)
		if toHash != nil {
			defer close(toHash)
		}
		for {
			c := <-free
			n, err := io.ReadFull(dr, c.buf[:cap(c.buf)])
			c.buf = c.buf[:n]
			if n > 0 {
				c.refs.Store(1)
				if toHash != nil {
					c.refs.Store(2)
					toHash <- c
				} else if h != nil {
					h.Write(c.buf)
				}
				toTar <- c
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					readErr = err
				}
				return
			}
		}
	}()
	cr := &chunkReader{ch: toTar, release: release}
	err = extract(cr, root)
	io.Copy(io.Discard, cr) // drain, so the producer ends
	wg.Wait()
	if err != nil {
		return err
	}
	return readErr
}

// chunkReader reads the chunks sent on ch in order.
type chunkReader struct {
	ch      chan *chunk
	cur     *chunk
	off     int
	release func(*chunk)
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.cur == nil || c.off == len(c.cur.buf) {
		if c.cur != nil {
			c.release(c.cur)
			c.cur = nil
		}
		next, ok := <-c.ch
		if !ok {
			return 0, io.EOF
		}
		c.cur, c.off = next, 0
	}
	n := copy(p, c.cur.buf[c.off:])
	c.off += n
	return n, nil
}

// TestPipeline checks that the benchmark's pipeline does the whole job:
// the stream hash is the image ID, and the tree and blob are complete.
func TestPipeline(t *testing.T) {
	dir := t.TempDir()
	im, err := WriteImages(context.Background(), dir, GenOptions{Size: 2e6, Seed: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i, separate := range []bool{false, true} {
		root := filepath.Join(dir, fmt.Sprint("root", i))
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		blob := filepath.Join(dir, fmt.Sprint("blob", i))
		h := sha512.New()
		if err := pipeline(im.Gzip, true, root, blob, h, separate); err != nil {
			t.Fatal(err)
		}
		if got := "sha512-" + hex.EncodeToString(h.Sum(nil)[:32]); got != im.ID {
			t.Errorf("separate=%v: stream hash %s, want %s", separate, got, im.ID)
		}
		if fi, err := os.Stat(blob); err != nil || fi.Size() == 0 {
			t.Errorf("blob: %v", err)
		}
		n := 0
		filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		if n != im.Files {
			t.Errorf("separate=%v: %d files extracted, want %d", separate, n, im.Files)
		}
	}
}
