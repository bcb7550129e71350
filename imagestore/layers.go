package imagestore

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/tarx"
)

// ErrDigest is returned when content does not match the digest it was
// stored under.
var ErrDigest = errors.New("content does not match its digest")

// Lease keeps the blobs and trees an import stored from image gc until
// the record naming them is written: gc skips what a lease holds (a
// shared flock per blob or tree, so it holds across processes).
type Lease struct {
	locks []*lock.Lock
}

// NewLease returns an empty lease. Close it after PutRecord.
func (s *Store) NewLease() *Lease { return &Lease{} }

func (l *Lease) add(k *lock.Lock) {
	if l == nil {
		k.Close()
		return
	}
	l.locks = append(l.locks, k)
}

// Close releases what the lease holds. It is safe to call twice.
func (l *Lease) Close() error {
	if l == nil {
		return nil
	}
	for _, k := range l.locks {
		k.Close()
	}
	l.locks = nil
	return nil
}

// useBlob takes a shared lock on a blob for a lease; sweep takes it
// exclusively (without waiting) before removing the blob.
func (s *Store) useBlob(ctx context.Context, key string) (*lock.Lock, error) {
	return lock.KeyLock(ctx, filepath.Join(s.dir, "locks"), "blob-"+keyFileName(key), false)
}

func (s *Store) lockBlobForRemoval(key string) (*lock.Lock, error) {
	l, err := lock.Create(filepath.Join(s.dir, "locks", "blob-"+keyFileName(key)))
	if err != nil {
		return nil, err
	}
	if err := l.TryExclusive(); err != nil {
		l.Close()
		return nil, fmt.Errorf("blob %s: %w", ShortKey(key), ErrInUse)
	}
	return l, nil
}

// OpenBlob opens a stored blob.
func (s *Store) OpenBlob(key string) (*os.File, error) {
	if !isFullKey(key) {
		return nil, fmt.Errorf("blob %q: not a digest: %w", key, ErrNotFound)
	}
	f, err := os.Open(s.blobPath(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", ShortKey(key), ErrNotFound)
	}
	return f, err
}

func (s *Store) hasBlob(key string) bool {
	_, err := os.Stat(s.blobPath(key))
	return err == nil
}

// PutBlob stores r under want, its digest (sha256:… or sha512-…), which
// is checked while writing: a blob is published only once its content
// matches and is durable, so a half-written blob is never visible. A blob
// already stored is not read again. The lease keeps the blob from gc
// until the record naming it exists.
func (s *Store) PutBlob(ctx context.Context, want string, r io.Reader, l *Lease) error {
	h, err := hashFor(want)
	if err != nil {
		return err
	}
	ul, err := s.useBlob(ctx, want)
	if err != nil {
		return err
	}
	if s.hasBlob(want) {
		l.add(ul)
		return nil
	}
	work, wl, err := s.newWorkDir("blob")
	if err != nil {
		ul.Close()
		return err
	}
	defer func() { os.RemoveAll(work); wl.Close() }()
	tmp := filepath.Join(work, "blob")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err == nil {
		_, err = io.Copy(io.MultiWriter(f, h), &ctxReader{ctx, r})
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		if got := keyOfSum(want, h.Sum(nil)); got != want {
			err = fmt.Errorf("blob %s: %w (got %s)", ShortKey(want), ErrDigest, ShortKey(got))
		}
	}
	if err == nil {
		err = s.publishBlob(tmp, want)
	}
	if err != nil {
		ul.Close()
		return err
	}
	l.add(ul)
	return nil
}

// publishBlob renames a durable file into blob/ and syncs the directory.
func (s *Store) publishBlob(tmp, key string) error {
	dst := s.blobPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	if err := durable.rename(tmp, dst); err != nil {
		return err
	}
	return durable.fsync(filepath.Dir(dst))
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// LayerDesc describes a layer to store: its blob digest, its diff ID and
// media type, as an image's manifest and config give them.
type LayerDesc struct {
	Digest    string
	DiffID    string
	MediaType string
	// MaxSize bounds the uncompressed layer (0 = DefaultMaxSize).
	MaxSize int64
}

// layerSizeFile, in a layer's tree, records the uncompressed layer's size
// and the tree's disk usage, for the records of every image that has it.
const layerSizeFile = "size"

// HasLayer reports whether the layer with this diff ID is extracted.
func (s *Store) HasLayer(diffID string) bool {
	return isFullKey(diffID) && s.treeValid(LayerTreeID(diffID))
}

// PutLayer stores a layer: its blob, and its tree extracted by diff ID
// with the rules of package tarx and OCI whiteouts turned into overlayfs
// ones. open is called only if something is missing, so a layer that
// another image already brought is neither downloaded nor extracted
// again. Both digests are checked in the one pass over the data. The
// lease keeps blob and tree from gc until the record naming them exists.
func (s *Store) PutLayer(ctx context.Context, d LayerDesc, open func() (io.ReadCloser, error), l *Lease) (Layer, error) {
	out := Layer{Digest: d.Digest, DiffID: d.DiffID, MediaType: d.MediaType, TreeID: LayerTreeID(d.DiffID)}
	if !strings.HasPrefix(d.Digest, SHA256KeyPrefix) || !isFullKey(d.Digest) || !strings.HasPrefix(d.DiffID, SHA256KeyPrefix) || !isFullKey(d.DiffID) {
		return out, fmt.Errorf("layer %s (diff ID %s): want sha256:<64 hex> digests", d.Digest, d.DiffID)
	}
	if d.MaxSize <= 0 {
		d.MaxSize = DefaultMaxSize
	}
	// One extractor per layer, among all processes.
	kl, err := s.keyLock(ctx, out.TreeID)
	if err != nil {
		return out, err
	}
	defer kl.Close()
	tl, err := s.UseTree(ctx, out.TreeID)
	if err != nil {
		return out, err
	}
	bl, err := s.useBlob(ctx, d.Digest)
	if err != nil {
		tl.Close()
		return out, err
	}
	held := []*lock.Lock{tl, bl}
	defer func() {
		for _, k := range held {
			k.Close()
		}
	}()
	if !s.treeValid(out.TreeID) || !s.hasBlob(d.Digest) {
		if err := s.extractLayer(ctx, d, open); err != nil {
			return out, fmt.Errorf("layer %s: %w", ShortKey(d.Digest), err)
		}
	}
	if fi, err := os.Stat(s.blobPath(d.Digest)); err == nil {
		out.Size = fi.Size()
	}
	if data, err := os.ReadFile(filepath.Join(s.TreePath(out.TreeID), layerSizeFile)); err == nil {
		fmt.Sscan(string(data), &out.Unpacked, &out.Disk)
	}
	for _, k := range held {
		l.add(k)
	}
	held = nil
	return out, nil
}

func (s *Store) extractLayer(ctx context.Context, d LayerDesc, open func() (io.ReadCloser, error)) error {
	work, wl, err := s.newWorkDir("layer")
	if err != nil {
		return err
	}
	defer func() { os.RemoveAll(work); wl.Close() }()
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	blob, err := os.OpenFile(filepath.Join(work, "blob"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	defer blob.Close()
	bh := sha256.New()
	dr, _, closeFn, err := aci.Decompress(io.TeeReader(rc, io.MultiWriter(blob, bh)))
	if err != nil {
		return err
	}
	defer closeFn()
	hr := newHashingReader(ctx, dr, d.MaxSize, sha256.New())
	defer hr.Close()
	tree := filepath.Join(work, "tree")
	root := filepath.Join(tree, "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	ex, err := tarx.New(root, tarx.DefaultLimits, os.Geteuid() == 0)
	if err != nil {
		return err
	}
	defer ex.Close()
	ex.ConvertWhiteouts()
	tr := tar.NewReader(hr)
	var declared int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if e := hr.Err(); e != nil {
				return e
			}
			return fmt.Errorf("%w: the tar archive is corrupt: %v", aci.ErrInvalid, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
			if declared += hdr.Size; declared > d.MaxSize {
				return fmt.Errorf("%w: its files add up to more than %d bytes (at %q; a decompression bomb, or raise --max-size)", ErrTooLarge, d.MaxSize, hdr.Name)
			}
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if name == "" {
			name = "."
		}
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(hdr.Linkname, "./")
		}
		if err := ex.Add(name, hdr, tr); err != nil {
			if e := hr.Err(); e != nil {
				return e
			}
			if errors.Is(err, tarx.ErrUnsafe) {
				return fmt.Errorf("%w: %w", aci.ErrInvalid, err)
			}
			return readErr(hr, err)
		}
		if used := ex.DiskUsage(); used > d.MaxSize {
			return fmt.Errorf("%w: its files take more than %d bytes of disk (at %q; raise --max-size)", ErrTooLarge, d.MaxSize, hdr.Name)
		}
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return readErr(hr, err)
	}
	if err := hr.Err(); err != nil {
		return err
	}
	// The rest of the blob (after the compressed stream) is part of it.
	if _, err := io.Copy(io.Discard, io.TeeReader(rc, io.MultiWriter(blob, bh))); err != nil {
		return err
	}
	if got := keyOfSum(d.Digest, bh.Sum(nil)); got != d.Digest {
		return fmt.Errorf("%w: the blob's digest is %s", ErrDigest, got)
	}
	if got := keyOfSum(d.DiffID, hr.Sum()); got != d.DiffID {
		return fmt.Errorf("%w: the uncompressed layer's digest is %s, not its diff ID %s", ErrDigest, got, d.DiffID)
	}
	digest, err := ex.Finish()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, "hash"), []byte(digest+"\n"), 0o640); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, layerSizeFile), fmt.Appendf(nil, "%d %d\n", hr.n, ex.DiskUsage()), 0o640); err != nil {
		return err
	}
	if err := blob.Close(); err != nil {
		return err
	}
	// One syncfs makes the blob and every file durable before the
	// renames that publish them.
	if err := durable.syncFS(work); err != nil {
		return err
	}
	treeID := LayerTreeID(d.DiffID)
	if !s.hasBlob(d.Digest) {
		if err := s.publishBlob(filepath.Join(work, "blob"), d.Digest); err != nil {
			return err
		}
	}
	if !s.treeValid(treeID) {
		return s.installTree(tree, treeID, true)
	}
	return nil
}

// PutRecord writes a layered image's record (an ACI's is written by
// Staged.Commit). Its manifest and config blobs and every layer must be
// stored (PutBlob, PutLayer, under a lease still open): the record is the
// last step, so a record never names what is not there.
func (s *Store) PutRecord(ctx context.Context, info *ImageInfo) error {
	if info.IsACI() || len(info.Layers) == 0 {
		return fmt.Errorf("record %s: PutRecord takes layered records (an ACI is imported with Stage and Commit)", info.Key)
	}
	if !strings.HasPrefix(info.Key, SHA256KeyPrefix) || !isFullKey(info.Key) {
		return fmt.Errorf("record %q: the key of a layered image is its manifest's sha256: digest", info.Key)
	}
	for _, b := range info.blobs() {
		if !s.hasBlob(b) {
			return fmt.Errorf("record %s: blob %s is not stored: %w", ShortKey(info.Key), ShortKey(b), ErrNotFound)
		}
	}
	for i := range info.Layers {
		l := &info.Layers[i]
		l.TreeID = LayerTreeID(l.DiffID)
		if !s.treeValid(l.TreeID) {
			return fmt.Errorf("record %s: layer %s has no tree: %w", ShortKey(info.Key), ShortKey(l.DiffID), ErrNotFound)
		}
	}
	kl, err := s.keyLock(ctx, keyFileName(info.Key))
	if err != nil {
		return err
	}
	defer kl.Close()
	rec := *info
	rec.TreeID = ""
	if rec.ImportTime.IsZero() {
		rec.ImportTime = time.Now()
	}
	if rec.Size == 0 {
		rec.Size = s.blobBytes(&rec)
	}
	if rec.DiskUsage == 0 {
		rec.UnpackedSize, rec.DiskUsage = 0, rec.Size
		for _, l := range rec.Layers {
			rec.UnpackedSize += l.Unpacked
			rec.DiskUsage += l.Disk
		}
	}
	return s.update(true, func(tx *bolt.Tx) error {
		if old, err := getImage(tx, rec.Key); err != nil {
			return err
		} else if old != nil {
			rec.ImportTime, rec.LastUsed = old.ImportTime, old.LastUsed
			if err := deleteImage(tx, old); err != nil { // its names may differ
				return err
			}
		}
		if err := putImage(tx, &rec); err != nil {
			return err
		}
		*info = rec
		return nil
	})
}

// blobBytes returns the bytes of a record's blobs.
func (s *Store) blobBytes(info *ImageInfo) (size int64) {
	for _, b := range info.blobs() {
		if fi, err := os.Stat(s.blobPath(b)); err == nil {
			size += fi.Size()
		}
	}
	return size
}

// LowerDirs returns the rootfs directories of an image's trees, top first,
// as a pod stacks them (overlayfs lowerdir order), after checking each
// tree's completion marker (one stat each: never a re-hash).
func (s *Store) LowerDirs(info *ImageInfo) ([]string, error) {
	var out []string
	for _, t := range info.Trees() {
		if !s.treeValid(t) {
			return nil, fmt.Errorf("image %s has no rendered tree (%s): fetch it again", ShortKey(info.Key), t)
		}
		out = append(out, filepath.Join(s.TreePath(t), "rootfs"))
	}
	return out, nil
}
