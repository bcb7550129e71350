// Package imagestore is rkt's content-addressed image store: the blobs of
// fetched images, an index of format-neutral image records (ACIs and
// layered OCI images), and the tree store of rendered root file systems —
// one per ACI, one per OCI layer (by diff ID, shared between images) — that
// pods use as overlayfs lower layers. Callers use it through the small
// interfaces of interfaces.go; storetest is their conformance suite.
//
// Layout below the store directory (<data dir>/cas):
//
//	blob/sha512/<2 hex>/sha512-<64 hex>  an ACI exactly as fetched
//	blob/sha256/<2 hex>/sha256-<64 hex>  an OCI blob (manifest, config, layer)
//	tree/<tree ID>/                      a rendered tree: rootfs/, hash, rendered,
//	                                     and manifest (ACI) or size (layer)
//	db/index.db                          the index (bbolt)
//	locks/<key>                          per-key flock files
//	tmp/                                 work areas of imports in progress
//
// Many rkt processes use one store at the same time with no daemon: each
// write goes to tmp/ first and is renamed into place, per-key locks
// serialise imports of the same image, and the index is opened for one short
// transaction at a time. A blob or tree becomes visible only through an
// index row written after it is durable, so a process killed at any point
// leaves nothing half-imported in view; image gc removes the leftovers.
package imagestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/pkg/lock"
)

// Error classes.
var (
	ErrNotFound  = errors.New("image not found")
	ErrAmbiguous = errors.New("ambiguous image ID")
)

// MediaTypeACI is the media type of an ACI record. A record stored
// without a media type (by an older rkt) is an ACI.
const MediaTypeACI = "application/vnd.appc.image+tar"

// ImageInfo is one index row: an image record. It is format-neutral: an
// ACI record has one tree (TreeID, which for an ACI with dependencies is
// their merged tree); a layered record (an OCI image) has Config and an
// ordered list of Layers, each with a tree of its own, and no TreeID.
type ImageInfo struct {
	// Key is the image's ID: sha512-… for an ACI, the manifest's
	// sha256:… digest for an OCI image.
	Key  string `json:"id"`
	Name string `json:"name"`
	// MediaType is the media type of Manifest ("" = MediaTypeACI).
	MediaType string `json:"media_type,omitempty"`
	// Refs are further references the image is known by (such as a
	// registry reference); like Name, each finds it in FindByName.
	Refs   []string          `json:"refs,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Manifest is the image's manifest, raw as the image carried it.
	Manifest []byte `json:"manifest"`
	// Config is the digest of a layered image's config blob.
	Config string `json:"config,omitempty"`
	// Layers are a layered image's layers, lowest first.
	Layers       []Layer         `json:"layers,omitempty"`
	Compression  aci.Compression `json:"compression"`
	Size         int64           `json:"size"`          // blob bytes, as fetched
	UnpackedSize int64           `json:"unpacked_size"` // uncompressed image bytes
	// DiskUsage is what the image occupies in the store: its blob and
	// the allocated blocks of its tree (0 for images stored before it
	// was recorded).
	DiskUsage  int64     `json:"disk_usage,omitempty"`
	TreeID     string    `json:"tree_id"` // rendered tree used by pods
	Deps       []string  `json:"deps,omitempty"`
	ImportTime time.Time `json:"import_time"`
	LastUsed   time.Time `json:"last_used"`
	Source     string    `json:"source,omitempty"` // where it was fetched from
	// SignedBy is the fingerprint of the key that signed the image, or
	// "" if it was stored without a signature check.
	SignedBy string `json:"signed_by,omitempty"`
}

// Layer is one layer of a layered record.
type Layer struct {
	Digest    string `json:"digest"`  // the blob as fetched (sha256:…)
	DiffID    string `json:"diff_id"` // of the uncompressed tar (sha256:…)
	MediaType string `json:"media_type,omitempty"`
	Size      int64  `json:"size"`    // blob bytes
	TreeID    string `json:"tree_id"` // LayerTreeID(DiffID)
	// Unpacked is the uncompressed layer's size; Disk what its tree
	// occupies (allocated blocks), as recorded at extraction.
	Unpacked int64 `json:"unpacked_size,omitempty"`
	Disk     int64 `json:"disk_usage,omitempty"`
}

// IsACI reports whether the record is an ACI's.
func (i *ImageInfo) IsACI() bool { return i.MediaType == "" || i.MediaType == MediaTypeACI }

// Trees returns the trees a pod of the image uses as its lower
// directories, top first: an ACI's one tree, or a layered image's layer
// trees from the last layer to the first.
func (i *ImageInfo) Trees() []string {
	if len(i.Layers) == 0 {
		return []string{i.TreeID}
	}
	out := make([]string, 0, len(i.Layers))
	for j := len(i.Layers) - 1; j >= 0; j-- {
		out = append(out, i.Layers[j].TreeID)
	}
	return out
}

// blobs returns the blobs the record references.
func (i *ImageInfo) blobs() []string {
	out := []string{i.Key}
	if i.Config != "" {
		out = append(out, i.Config)
	}
	for _, l := range i.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// StoreSize is what image list shows: the disk the image occupies
// (DiskUsage), or for images stored before that was recorded, the size
// of the uncompressed image.
func (i *ImageInfo) StoreSize() int64 {
	if i.DiskUsage > 0 {
		return i.DiskUsage
	}
	return i.UnpackedSize
}

// Remote is the cache record for an image fetched from a URL.
type Remote struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	MaxAge       int       `json:"max_age,omitempty"`
	DownloadTime time.Time `json:"download_time"`
	BlobKey      string    `json:"key"`
}

// Store is an open image store.
type Store struct {
	dir string
}

// Open opens (creating if needed) the store at dir.
func Open(dir string) (*Store, error) {
	for _, d := range []string{"", "blob/sha512", "tree", "db", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return nil, fmt.Errorf("creating image store: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// OpenReadOnly opens an existing store without creating anything, for the
// commands that only read it (so they work for non-root readers).
func OpenReadOnly(dir string) *Store { return &Store{dir: dir} }

// Dir returns the store directory.
func (s *Store) Dir() string { return s.dir }

// TmpDir is where downloads in progress live (same file system as blobs).
func (s *Store) TmpDir() string { return filepath.Join(s.dir, "tmp") }

// TreePath returns the directory of a rendered tree.
func (s *Store) TreePath(treeID string) string { return filepath.Join(s.dir, "tree", treeID) }

// BlobPath returns the path of an image's blob (the image as fetched).
func (s *Store) BlobPath(key string) string { return s.blobPath(key) }

func (s *Store) keyLock(ctx context.Context, key string) (*lock.Lock, error) {
	return lock.KeyLock(ctx, filepath.Join(s.dir, "locks"), key, true)
}

// Get returns the index row of a full key.
func (s *Store) Get(key string) (*ImageInfo, error) {
	var info *ImageInfo
	err := s.view(func(tx *bolt.Tx) (err error) {
		info, err = getImage(tx, key)
		return err
	})
	if err == nil && info == nil {
		err = fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return info, err
}

// ResolveKey expands a unique key prefix ("sha512-" or "sha256:" and at
// least two hex digits) to the full key.
func (s *Store) ResolveKey(prefix string) (string, error) {
	prefix = strings.ToLower(prefix)
	if _, h, _ := splitKey(prefix); !IsKey(prefix) || len(h) < 2 {
		return "", fmt.Errorf("%q is not an image ID: want sha512- or sha256: followed by at least 2 hex digits", prefix)
	}
	var matches []string
	err := s.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		c := tx.Bucket(bucketImages).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
			matches = append(matches, string(k))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("no image with ID %s in the store: %w (see rkt image list)", prefix, ErrNotFound)
	case 1:
		return matches[0], nil
	}
	short := make([]string, len(matches))
	for i, m := range matches {
		short[i] = m[:min(len(m), len(prefix)+8)]
	}
	return "", fmt.Errorf("image ID %s matches %d images (%s): %w; give more digits", prefix, len(matches), strings.Join(short, ", "), ErrAmbiguous)
}

// FindByName returns the best image for a name and labels: among the
// images with that name carrying all the asked labels, the most recently
// imported. An image asked for without a version label matches any version.
func (s *Store) FindByName(ref aci.NameLabels) (*ImageInfo, error) {
	var best *ImageInfo
	err := s.view(func(tx *bolt.Tx) error {
		for _, key := range imagesNamed(tx, ref.Name) {
			info, err := getImage(tx, key)
			if err != nil || info == nil {
				continue
			}
			if !labelsMatch(info.Labels, ref.Labels) {
				continue
			}
			if best == nil || info.ImportTime.After(best.ImportTime) {
				best = info
			}
		}
		return nil
	})
	if err == nil && best == nil {
		err = fmt.Errorf("no image named %s in the store: %w", ref, ErrNotFound)
	}
	return best, err
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Resolve finds an image by ID prefix or by name[:version][,label=value].
func (s *Store) Resolve(ref string) (*ImageInfo, error) {
	if IsKey(ref) {
		key, err := s.ResolveKey(ref)
		if err != nil {
			return nil, err
		}
		return s.Get(key)
	}
	nl, err := aci.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return s.FindByName(nl)
}

// List returns every image, sorted by import time.
func (s *Store) List() ([]*ImageInfo, error) {
	var out []*ImageInfo
	err := s.view(func(tx *bolt.Tx) error {
		return forEachImage(tx, func(i *ImageInfo) error {
			out = append(out, i)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ImportTime.Before(out[j].ImportTime) })
	return out, err
}

// GetRemote returns the cache record for a URL, or nil.
func (s *Store) GetRemote(url string) (*Remote, error) {
	var r *Remote
	err := s.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		data := tx.Bucket(bucketRemotes).Get([]byte(url))
		if data == nil {
			return nil
		}
		r = &Remote{}
		return jsonUnmarshal(data, r)
	})
	return r, err
}

// PutRemote records cache data for a URL whose image is in the store.
func (s *Store) PutRemote(r *Remote) error {
	return s.update(true, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketRemotes), r.URL, r)
	})
}

// Touch records that images were used now, in one transaction. It skips
// the fsync: a lost last-used time only makes image gc keep an image a
// little longer.
func (s *Store) Touch(keys ...string) error {
	now := time.Now()
	return s.update(false, func(tx *bolt.Tx) error {
		for _, key := range keys {
			info, err := getImage(tx, key)
			if err != nil {
				return err
			}
			if info == nil {
				continue
			}
			info.LastUsed = now
			if err := putImage(tx, info); err != nil {
				return err
			}
		}
		return nil
	})
}
