package imagestore

import (
	"context"
	"io"
	"os"
	"time"
)

// The store is used through small interfaces, composed into Interface;
// imagestore/storetest is the conformance suite every implementation
// passes. Callers take the narrowest one they need.

// Blobs is content addressed by digest, the algorithm in the key
// (sha512-… for ACIs, sha256:… for OCI blobs).
type Blobs interface {
	// PutBlob stores r under want after checking its digest.
	PutBlob(ctx context.Context, want string, r io.Reader, l *Lease) error
	// OpenBlob opens a stored blob; ErrNotFound if there is none.
	OpenBlob(key string) (*os.File, error)
}

// Records are the image records of the index.
type Records interface {
	// Get returns the record of a full key; ErrNotFound if none.
	Get(key string) (*ImageInfo, error)
	// List returns every record, oldest import first.
	List() ([]*ImageInfo, error)
	// PutRecord writes a layered image's record once its blobs and
	// layers are stored.
	PutRecord(ctx context.Context, info *ImageInfo) error
}

// Resolver finds a record by ID prefix, name or reference.
type Resolver interface {
	Resolve(ref string) (*ImageInfo, error)
}

// Layers are extracted trees, one per layer diff ID, shared by every
// image that has the layer.
type Layers interface {
	// HasLayer reports whether the layer's tree is complete.
	HasLayer(diffID string) bool
	// PutLayer stores a layer's blob and tree, opening the content
	// only if something is missing.
	PutLayer(ctx context.Context, d LayerDesc, open func() (io.ReadCloser, error), l *Lease) (Layer, error)
	// LowerDirs returns an image's tree directories, top first.
	LowerDirs(info *ImageInfo) ([]string, error)
}

// Leaser hands out leases that keep an import's blobs and trees from gc
// until its record is written.
type Leaser interface {
	NewLease() *Lease
}

// Collector removes images and what nothing uses any more.
type Collector interface {
	// Remove deletes an image and the trees and blobs only it used;
	// keepTrees are trees pods still use.
	Remove(ctx context.Context, key string, keepTrees ...map[string]bool) error
	// GC removes expired images, then unreferenced trees and blobs;
	// keepTrees are trees pods still use.
	GC(ctx context.Context, gracePeriod time.Duration, keepTrees ...map[string]bool) (*GCReport, error)
}

// Verifier re-hashes an image's trees.
type Verifier interface {
	VerifyTree(info *ImageInfo) error
}

// Interface is the whole store.
type Interface interface {
	Blobs
	Records
	Resolver
	Layers
	Leaser
	Collector
	Verifier
}

var _ Interface = (*Store)(nil)
