package imagestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rkt/rkt/pkg/lock"
)

// ErrInUse is returned when an image's tree is used by a live pod.
var ErrInUse = errors.New("image in use")

// UseTree takes a shared lock on a tree for the lifetime of a pod (the
// caller keeps the returned lock open, e.g. by passing it to stage1).
// image rm and gc skip trees that are locked this way.
func (s *Store) UseTree(ctx context.Context, treeID string) (*lock.Lock, error) {
	return lock.KeyLock(ctx, filepath.Join(s.dir, "locks"), "tree-"+treeID, false)
}

// lockTreeForRemoval fails with ErrInUse while a pod (or an import about
// to publish the tree) holds it; otherwise it returns an exclusive lock
// that keeps anyone from starting to use the tree while it is removed.
func (s *Store) lockTreeForRemoval(treeID string) (*lock.Lock, error) {
	l, err := lock.Create(filepath.Join(s.dir, "locks", "tree-"+treeID))
	if err != nil {
		return nil, err
	}
	if err := l.TryExclusive(); err != nil {
		l.Close()
		if errors.Is(err, lock.ErrLocked) {
			return nil, fmt.Errorf("tree %s is used by a running pod: %w", treeID, ErrInUse)
		}
		return nil, err
	}
	return l, nil
}

// Remove deletes an image: its index row, the trees and blobs no other
// image uses. It refuses while a pod uses one of the trees it would
// remove, and keeps the trees in keepTrees (those existing pods list: an
// exited pod holds no lock on them).
func (s *Store) Remove(ctx context.Context, key string, keepTrees ...map[string]bool) error {
	return s.remove(ctx, key, keepTrees)
}

func (s *Store) remove(ctx context.Context, key string, keepTrees []map[string]bool) error {
	kl, err := s.keyLock(ctx, keyFileName(key))
	if err != nil {
		return err
	}
	defer kl.Close()
	info, err := s.Get(key)
	if err != nil {
		return err
	}
	others, err := s.refs(key)
	if err != nil {
		return err
	}
	for _, k := range keepTrees {
		for t := range k {
			others[t] = true
		}
	}
	var trees []string
	for _, t := range ownTrees(info) {
		if others[t] && t != key {
			continue // another image's too: it stays
		}
		tl, err := s.lockTreeForRemoval(t)
		if err != nil {
			return fmt.Errorf("image %s: %w", ShortKey(key), err)
		}
		defer tl.Close()
		trees = append(trees, t)
	}
	// The index row goes first: from then on nothing can find the image,
	// and what is left if we die is unreferenced and collected by gc.
	err = s.update(true, func(tx *bolt.Tx) error {
		if err := deleteImage(tx, info); err != nil {
			return err
		}
		return deleteRemotesOf(tx, key)
	})
	if err != nil {
		return err
	}
	for _, t := range trees {
		if t != key && s.treeShared(t) {
			continue
		}
		if err := s.removeTree(t); err != nil {
			return fmt.Errorf("image %s removed from the index, but removing its tree failed (rkt image gc will retry): %w", ShortKey(key), err)
		}
	}
	for _, b := range info.blobs() {
		if others[b] && b != key {
			continue
		}
		if b != key { // an image's own blob is guarded by its key lock
			bl, err := s.lockBlobForRemoval(b)
			if err != nil {
				continue // held by an import's lease: gc takes it later
			}
			defer bl.Close()
		}
		if err := os.Remove(s.blobPath(b)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// ownTrees are the trees an image may own: an ACI's own tree and its
// rendered one, or a layered image's layer trees.
func ownTrees(info *ImageInfo) []string {
	if len(info.Layers) > 0 {
		return info.Trees()
	}
	trees := []string{info.Key}
	if info.TreeID != info.Key {
		trees = append(trees, info.TreeID)
	}
	return trees
}

// refs returns every tree and blob the index references, except through
// the record of key (pass "" for all).
func (s *Store) refs(except string) (map[string]bool, error) {
	refs := map[string]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		return forEachImage(tx, func(i *ImageInfo) error {
			if i.Key == except {
				return nil
			}
			for _, t := range ownTrees(i) {
				refs[t] = true
			}
			for _, d := range i.Deps {
				refs[d] = true
			}
			for _, b := range i.blobs() {
				refs[b] = true
			}
			return nil
		})
	})
	return refs, err
}

// treeShared reports whether an image still uses treeID.
func (s *Store) treeShared(treeID string) bool {
	refs, err := s.refs("")
	return err != nil || refs[treeID]
}

func deleteRemotesOf(tx *bolt.Tx, key string) error {
	b := tx.Bucket(bucketRemotes)
	var urls [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var r Remote
		if jsonUnmarshal(v, &r) == nil && r.BlobKey == key {
			urls = append(urls, append([]byte(nil), k...))
		}
		return nil
	})
	for _, u := range urls {
		if err := b.Delete(u); err != nil {
			return err
		}
	}
	return err
}

// GCReport says what GC did.
type GCReport struct {
	Removed []string // image keys removed
	Kept    []string // expired images kept because a pod uses them
	Trees   int      // unreferenced trees removed
	Blobs   int      // unreferenced blobs removed
}

// GC removes images not used (or imported, if never used) within
// gracePeriod and not used by a live pod, then any tree, blob or temporary
// file that no index row references (leftovers of killed processes).
// Images whose tree is in keepTrees (used by pods that still exist, even
// exited ones, whose stage1 gc still needs its stage1) are kept.
func (s *Store) GC(ctx context.Context, gracePeriod time.Duration, keepTrees ...map[string]bool) (*GCReport, error) {
	// An image is pinned when pods use its own tree or all of its trees
	// (a pod of another image sharing one layer does not pin it).
	pinned := func(i *ImageInfo) bool {
		for _, k := range keepTrees {
			if k[i.Key] {
				return true
			}
			all := true
			for _, t := range i.Trees() {
				all = all && k[t]
			}
			if all {
				return true
			}
		}
		return false
	}
	rep := &GCReport{}
	images, err := s.List()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(-gracePeriod)
	expired := func(i *ImageInfo) bool {
		last := i.LastUsed
		if last.IsZero() {
			last = i.ImportTime
		}
		return !last.After(deadline)
	}
	// Keep what is fresh and, transitively, what kept images depend on.
	keep := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, i := range images {
			if keep[i.Key] || expired(i) && !pinned(i) && !dependedOn(images, keep, i.Key) {
				continue
			}
			keep[i.Key], changed = true, true
		}
	}
	for _, i := range images {
		if keep[i.Key] {
			continue
		}
		if err := s.remove(ctx, i.Key, keepTrees); err != nil {
			if errors.Is(err, ErrInUse) {
				rep.Kept = append(rep.Kept, i.Key)
				continue
			}
			return rep, err
		}
		rep.Removed = append(rep.Removed, i.Key)
	}
	return rep, s.sweep(rep, keepTrees)
}

// sweep removes trees and blobs with no index row, except the trees
// existing pods use (keepTrees: a pod keeps its layers even once its
// image is removed).
func (s *Store) sweep(rep *GCReport, keepTrees []map[string]bool) error {
	if err := s.SweepTmp(24 * time.Hour); err != nil {
		return err
	}
	// Index files being created by a process that died (see createDB).
	if olds, err := filepath.Glob(filepath.Join(s.dir, "db", "index.db.new-*")); err == nil {
		for _, o := range olds {
			if fi, err := os.Stat(o); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.Remove(o)
			}
		}
	}
	refs, err := s.refs("")
	if err != nil {
		return err
	}
	for _, k := range keepTrees {
		for t := range k {
			refs[t] = true
		}
	}
	trees, err := os.ReadDir(filepath.Join(s.dir, "tree"))
	if err != nil {
		return err
	}
	for _, t := range trees {
		id := t.Name()
		if refs[id] {
			continue
		}
		tl, err := s.lockTreeForRemoval(id)
		if err != nil {
			continue // in use, being rendered, or held by an import's lease
		}
		// Re-check under the lock: an import may have committed meanwhile.
		if s.treeShared(id) {
			tl.Close()
			continue
		}
		if err := s.removeTree(id); err == nil {
			rep.Trees++
		}
		tl.Close()
	}
	for _, a := range keyAlgs {
		dirs, err := os.ReadDir(filepath.Join(s.dir, "blob", a.dir))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, d := range dirs {
			blobs, _ := os.ReadDir(filepath.Join(s.dir, "blob", a.dir, d.Name()))
			for _, b := range blobs {
				key, ok := keyOfFileName(a.dir, b.Name())
				if !ok || refs[key] {
					continue
				}
				if s.sweepBlob(key) {
					rep.Blobs++
				}
			}
		}
	}
	return nil
}

// sweepBlob removes an unreferenced blob unless an import holds it (its
// key lock for an ACI, a lease for any blob), re-checking under the locks.
func (s *Store) sweepBlob(key string) bool {
	kl, err := s.keyLock(context.Background(), keyFileName(key))
	if err != nil {
		return false
	}
	defer kl.Close()
	bl, err := s.lockBlobForRemoval(key)
	if err != nil {
		return false
	}
	defer bl.Close()
	if refs, err := s.refs(""); err != nil || refs[key] {
		return false
	}
	return os.Remove(s.blobPath(key)) == nil
}

// dependedOn reports whether a kept image depends on key.
func dependedOn(images []*ImageInfo, keep map[string]bool, key string) bool {
	for _, i := range images {
		if !keep[i.Key] {
			continue
		}
		for _, d := range i.Deps {
			if d == key {
				return true
			}
		}
	}
	return false
}
