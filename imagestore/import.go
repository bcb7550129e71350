package imagestore

import (
	"archive/tar"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/tarx"
)

// DefaultMaxSize bounds the uncompressed size of one image unless the
// caller sets another (rkt fetch --max-size).
const DefaultMaxSize = 16 << 30

// ErrTooLarge is returned when an image unpacks to more than allowed.
var ErrTooLarge = errors.New("image too large")

// ImportOptions steer one import.
type ImportOptions struct {
	// Expect, when it has a name, must match the image's manifest.
	Expect aci.NameLabels
	// MaxSize bounds the uncompressed image (0 = DefaultMaxSize).
	MaxSize int64
	// Move lets the import rename Source into the store instead of
	// copying it (for downloads that already sit in TmpDir).
	Move bool
	// Source describes where the image came from, for image list.
	Source string
	// Remote, for downloads, is the cache record saved with the image.
	Remote *Remote
}

// ParsedManifest parses an ACI record's manifest.
func (i *ImageInfo) ParsedManifest() (*schema.ImageManifest, error) {
	if !i.IsACI() {
		return nil, fmt.Errorf("image %s (%s) is not an ACI: this rkt runs ACIs only", ShortKey(i.Key), i.MediaType)
	}
	var m schema.ImageManifest
	if err := appcjson.Unmarshal(i.Manifest, &m); err != nil {
		return nil, fmt.Errorf("stored manifest of %s: %w", i.Key, err)
	}
	return &m, nil
}

// Staged is an image unpacked and hashed in the store's tmp area, not yet
// visible. Commit makes it visible; Abort removes it. Several staged images
// (an image and its dependencies) can be committed together.
type Staged struct {
	Key         string
	Manifest    *schema.ImageManifest
	RawManifest []byte
	Compression aci.Compression
	// SignedBy is the fingerprint of the key whose signature was checked
	// before Commit ("" = not verified); it is recorded in the index.
	SignedBy string

	s        *Store
	work     string // tmp/import-*: blob, tree/
	workLock *lock.Lock
	size     int64
	unpacked int64
	disk     int64 // the tree's allocated bytes
	digest   string
	source   string
	remote   *Remote
}

// Stage reads an image file: it hashes the uncompressed stream, unpacks
// the rootfs into a work area with the checks of package tarx, and reads
// the manifest, all in one pass over the data. Nothing becomes visible in
// the store; on error nothing is left behind.
func (s *Store) Stage(ctx context.Context, src string, opts ImportOptions) (st *Staged, err error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	st = &Staged{s: s, source: opts.Source, remote: opts.Remote}
	if st.work, st.workLock, err = s.newWorkDir("import"); err != nil {
		return nil, err
	}
	staged := st // `return nil, err` sets st to nil before deferred calls run
	defer func() {
		if err != nil {
			staged.Abort()
			st = nil
		}
	}()
	blob := filepath.Join(st.work, "blob")
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var r io.Reader = in
	var out *os.File
	if opts.Move {
		if err := os.Rename(src, blob); err != nil {
			return nil, fmt.Errorf("moving download into the store: %w", err)
		}
	} else {
		// Copy while reading: the blob is the image exactly as fetched, so
		// its signature still verifies after image export.
		if out, err = os.OpenFile(blob, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
			return nil, err
		}
		defer out.Close()
		r = io.TeeReader(in, out)
	}
	if err := os.MkdirAll(filepath.Join(st.work, "tree", "rootfs"), 0o755); err != nil {
		return nil, err
	}
	if err := st.unpack(ctx, r, opts.MaxSize); err != nil {
		return nil, err
	}
	// No fsync here: Commit makes blob and tree durable with one syncfs.
	if fi, err := os.Stat(blob); err == nil {
		st.size = fi.Size()
	}
	if opts.Expect.Name != "" {
		if err := opts.Expect.Matches(st.Manifest); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// unpack is the single pass: decompress -> (hash, size bound) -> tar.
func (st *Staged) unpack(ctx context.Context, r io.Reader, maxSize int64) error {
	dr, comp, closeFn, err := aci.Decompress(r)
	if err != nil {
		return err
	}
	defer closeFn()
	st.Compression = comp
	hr := newHashingReader(ctx, dr, maxSize, sha512.New())
	defer hr.Close()
	tree := filepath.Join(st.work, "tree")
	ex, err := tarx.New(filepath.Join(tree, "rootfs"), tarx.DefaultLimits, os.Geteuid() == 0)
	if err != nil {
		return err
	}
	defer ex.Close()
	tr := tar.NewReader(hr)
	var declared int64 // bytes the entries will occupy once written
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if e := hr.Err(); e != nil {
				return e
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return aci.Invalidf("the tar archive is truncated")
			}
			return aci.Invalidf("the tar archive is corrupt: %v", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		switch {
		case name == "manifest":
			if st.RawManifest != nil {
				return aci.Invalidf("duplicate entry %q", hdr.Name)
			}
			if hdr.Typeflag != tar.TypeReg {
				return aci.Invalidf("the manifest entry is not a regular file")
			}
			if hdr.Size > aci.MaxManifestSize {
				return aci.Invalidf("the manifest is %d bytes, more than the %d allowed", hdr.Size, aci.MaxManifestSize)
			}
			if st.RawManifest, err = io.ReadAll(tr); err != nil {
				return readErr(hr, err)
			}
			if st.Manifest, err = aci.ParseManifest(st.RawManifest); err != nil {
				return err
			}
		case name == "rootfs" || name == "rootfs/" || strings.HasPrefix(name, "rootfs/"):
			// A sparse entry is small in the stream but written out in
			// full: count what each file declares.
			if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
				if declared += hdr.Size; declared > maxSize {
					return fmt.Errorf("%w: its files add up to more than %d bytes (at %q; a decompression bomb, or raise rkt fetch --max-size)", ErrTooLarge, maxSize, hdr.Name)
				}
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(name, "rootfs"), "/")
			if hdr.Typeflag == tar.TypeLink { // tar names a hardlink's target by its archive path
				hdr.Linkname = strings.TrimPrefix(strings.TrimPrefix(hdr.Linkname, "./"), "rootfs/")
			}
			if rel == "" {
				rel = "."
			}
			if err := ex.Add(rel, hdr, tr); err != nil {
				if e := hr.Err(); e != nil {
					return e
				}
				if errors.Is(err, tarx.ErrUnsafe) {
					return fmt.Errorf("%w: %w", aci.ErrInvalid, err)
				}
				return readErr(hr, err)
			}
			// What the tree really occupies: a block per small file or
			// directory, however little the stream holds.
			if used := ex.DiskUsage(); used > maxSize {
				return fmt.Errorf("%w: its files take more than %d bytes of disk (at %q; raise rkt fetch --max-size)", ErrTooLarge, maxSize, hdr.Name)
			}
		default:
			return aci.Invalidf("entry %q is outside rootfs/ (an ACI holds only \"manifest\" and \"rootfs/\")", hdr.Name)
		}
	}
	// The image ID covers the whole uncompressed stream, tar padding and
	// all: read what the tar reader left.
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return readErr(hr, err)
	}
	if err := hr.Err(); err != nil {
		return err
	}
	if st.Manifest == nil {
		return aci.Invalidf("no manifest entry: not an ACI")
	}
	st.digest, err = ex.Finish()
	if err != nil {
		return err
	}
	sum := hr.Sum()
	st.Key = "sha512-" + hex.EncodeToString(sum[:32])
	st.unpacked = hr.n
	st.disk = ex.DiskUsage()
	if err := os.WriteFile(filepath.Join(tree, "manifest"), st.RawManifest, 0o640); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(tree, "hash"), []byte(st.digest+"\n"), 0o640)
}

func readErr(hr *hashingReader, err error) error {
	if e := hr.Err(); e != nil {
		return e
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return aci.Invalidf("the tar archive is truncated")
	}
	return err
}

// Commit makes the staged image visible: blob and tree are renamed into
// place after being made durable, then the index row is written. If the
// image is already in the store, the staged copy is dropped.
func (st *Staged) Commit(ctx context.Context) error {
	s := st.s
	kl, err := s.keyLock(ctx, st.Key)
	if err != nil {
		return err
	}
	defer kl.Close()
	existing, err := s.Get(st.Key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if existing != nil && s.treeValid(existing.Key) {
		err := s.update(true, func(tx *bolt.Tx) error {
			if existing.SignedBy == "" && st.SignedBy != "" {
				existing.SignedBy = st.SignedBy // verified now
				if err := putImage(tx, existing); err != nil {
					return err
				}
			}
			return st.putRemote(tx)
		})
		st.Abort()
		return err
	}
	// Hold the tree as a user until the index row exists, so that a
	// concurrent gc does not take the new tree for a leftover.
	tl, err := s.UseTree(ctx, st.Key)
	if err != nil {
		return err
	}
	defer tl.Close()
	// One syncfs makes the blob and every extracted file durable before
	// anything is renamed into view.
	if err := durable.syncFS(st.work); err != nil {
		return err
	}
	blobDst := s.blobPath(st.Key)
	if err := os.MkdirAll(filepath.Dir(blobDst), 0o750); err != nil {
		return err
	}
	if err := durable.rename(filepath.Join(st.work, "blob"), blobDst); err != nil {
		return err
	}
	if err := durable.fsync(filepath.Dir(blobDst)); err != nil {
		return err
	}
	if err := s.installTree(filepath.Join(st.work, "tree"), st.Key, true); err != nil {
		return err
	}
	now := time.Now()
	info := &ImageInfo{Key: st.Key, Name: st.Manifest.Name.String(), MediaType: MediaTypeACI, Labels: labelMap(st.Manifest),
		Manifest: st.RawManifest, Compression: st.Compression, Size: st.size, UnpackedSize: st.unpacked,
		DiskUsage: st.size + st.disk,
		TreeID:    st.Key, ImportTime: now, Source: st.source, SignedBy: st.SignedBy}
	if existing != nil {
		info.ImportTime, info.LastUsed = existing.ImportTime, existing.LastUsed
	}
	err = s.update(true, func(tx *bolt.Tx) error {
		if err := putImage(tx, info); err != nil {
			return err
		}
		return st.putRemote(tx)
	})
	st.Abort()
	return err
}

func (st *Staged) putRemote(tx *bolt.Tx) error {
	if st.remote == nil {
		return nil
	}
	st.remote.BlobKey = st.Key
	return putJSON(tx.Bucket(bucketRemotes), st.remote.URL, st.remote)
}

// BlobFile is the staged image exactly as fetched, for signature checks
// before Commit (the store's own copy, which no one else can change).
func (st *Staged) BlobFile() string { return filepath.Join(st.work, "blob") }

// Abort removes the work area. It is safe to call more than once, and
// after Commit.
func (st *Staged) Abort() {
	if st.work != "" {
		os.RemoveAll(st.work)
		st.work = ""
	}
	if st.workLock != nil {
		st.workLock.Close()
		st.workLock = nil
	}
}

// TreeDigest is the digest recorded for the staged tree.
func (st *Staged) TreeDigest() string { return st.digest }

func labelMap(m *schema.ImageManifest) map[string]string {
	out := map[string]string{}
	for _, l := range m.Labels {
		out[l.Name.String()] = l.Value
	}
	return out
}

// hashingReader runs the front of the import pipeline on two goroutines
// of its own: one reads (and so decompresses) ahead into a small ring of
// buffers, the other hashes each chunk (SHA-512 for an ACI, SHA-256 for a layer) and bounds the size,
// then hands it to the consumer (the tar extractor). Decompression,
// hashing and extraction thus overlap on separate cores.
type hashingReader struct {
	ch     chan []byte
	free   chan []byte
	cur    []byte
	curBuf []byte
	h      hash.Hash
	n      int64
	err    error // set by the hasher before closing ch
	stop   chan struct{}
	done   chan struct{} // the hasher finished
	rdone  chan struct{} // the reader finished (it may be reading r)
}

// chunk is what the reader passes to the hasher.
type chunk struct {
	buf []byte
	err error // the read error after buf (io.EOF at the end)
}

func newHashingReader(ctx context.Context, r io.Reader, max int64, h hash.Hash) *hashingReader {
	const nbuf, size = 8, 256 << 10
	hr := &hashingReader{ch: make(chan []byte, nbuf), free: make(chan []byte, nbuf),
		h: h, stop: make(chan struct{}), done: make(chan struct{}), rdone: make(chan struct{})}
	for i := 0; i < nbuf; i++ {
		hr.free <- make([]byte, size)
	}
	raw := make(chan chunk, nbuf)
	go func() { // reader
		defer close(hr.rdone)
		defer close(raw)
		for {
			var buf []byte
			select {
			case buf = <-hr.free:
			case <-hr.stop:
				return
			}
			n, err := io.ReadFull(r, buf)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			select {
			case raw <- chunk{buf[:n], err}:
			case <-hr.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // hasher
		defer close(hr.done)
		defer close(hr.ch)
		for c := range raw {
			if len(c.buf) > 0 {
				hr.h.Write(c.buf)
				hr.n += int64(len(c.buf))
				if hr.n > max {
					hr.err = fmt.Errorf("%w: it unpacks to more than %d bytes (a decompression bomb, or raise rkt fetch --max-size)", ErrTooLarge, max)
					return
				}
				select {
				case hr.ch <- c.buf:
				case <-hr.stop:
					return
				}
			} else {
				hr.free <- c.buf[:cap(c.buf)]
			}
			if c.err != nil {
				if c.err != io.EOF {
					hr.err = c.err
				}
				return
			}
		}
	}()
	return hr
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	for len(hr.cur) == 0 {
		if hr.curBuf != nil {
			hr.free <- hr.curBuf[:cap(hr.curBuf)]
			hr.curBuf = nil
		}
		buf, ok := <-hr.ch
		if !ok {
			<-hr.done
			if hr.err != nil {
				return 0, hr.err
			}
			return 0, io.EOF
		}
		hr.cur, hr.curBuf = buf, buf
	}
	n := copy(p, hr.cur)
	hr.cur = hr.cur[n:]
	return n, nil
}

// Err returns the producer's error (decompression, size bound) once known.
func (hr *hashingReader) Err() error {
	select {
	case <-hr.done:
		return hr.err
	default:
		return nil
	}
}

// Sum is valid after Read returned io.EOF.
func (hr *hashingReader) Sum() []byte { return hr.h.Sum(nil) }

// Close stops the reader and the hasher and waits for both, so that the
// caller may close what they read from.
func (hr *hashingReader) Close() {
	select {
	case <-hr.stop:
	default:
		close(hr.stop)
	}
	<-hr.done
	<-hr.rdone
}

// durable holds the calls that make a commit durable and then visible
// (Commit, installTree), so that a test can record their order: data
// synced before the renames that publish it, each rename's directory synced
// before the index row names it.
var durable = struct {
	syncFS func(p string) error
	fsync  func(p string) error
	rename func(from, to string) error
}{syncFS, fsyncPath, os.Rename}

// fsyncPath fsyncs a file or directory by path.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncFS flushes the whole file system holding p: one call instead of an
// fsync per extracted file.
func syncFS(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: p, Err: err}
	}
	return nil
}
