package imagestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// Remove deletes an image: its index row, its trees and its blob. It
// refuses while a pod uses the image's tree.
func (s *Store) Remove(ctx context.Context, key string) error {
	kl, err := s.keyLock(ctx, key)
	if err != nil {
		return err
	}
	defer kl.Close()
	info, err := s.Get(key)
	if err != nil {
		return err
	}
	trees := []string{key}
	if info.TreeID != key {
		trees = append(trees, info.TreeID)
	}
	for _, t := range trees {
		tl, err := s.lockTreeForRemoval(t)
		if err != nil {
			return fmt.Errorf("image %s: %w", ShortKey(key), err)
		}
		defer tl.Close()
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
	if err := os.Remove(s.blobPath(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// treeShared reports whether another image still renders to treeID.
func (s *Store) treeShared(treeID string) bool {
	shared := false
	s.view(func(tx *bolt.Tx) error {
		return forEachImage(tx, func(i *ImageInfo) error {
			if i.TreeID == treeID || i.Key == treeID {
				shared = true
			}
			return nil
		})
	})
	return shared
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
	pinned := func(i *ImageInfo) bool {
		for _, k := range keepTrees {
			if k[i.TreeID] || k[i.Key] {
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
		if err := s.Remove(ctx, i.Key); err != nil {
			if errors.Is(err, ErrInUse) {
				rep.Kept = append(rep.Kept, i.Key)
				continue
			}
			return rep, err
		}
		rep.Removed = append(rep.Removed, i.Key)
	}
	return rep, s.sweep(rep)
}

// sweep removes trees and blobs with no index row.
func (s *Store) sweep(rep *GCReport) error {
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
	refs := map[string]bool{}
	images, err := s.List()
	if err != nil {
		return err
	}
	for _, i := range images {
		refs[i.Key], refs[i.TreeID] = true, true
		for _, d := range i.Deps {
			refs[d] = true
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
			continue // in use, or being rendered
		}
		// Re-check under the lock: an import may have committed meanwhile.
		if _, err := s.Get(id); err == nil || strings.HasPrefix(id, "deps-") && s.treeShared(id) {
			tl.Close()
			continue
		}
		if err := s.removeTree(id); err == nil {
			rep.Trees++
		}
		tl.Close()
	}
	dirs, err := os.ReadDir(filepath.Join(s.dir, "blob", "sha512"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		blobs, _ := os.ReadDir(filepath.Join(s.dir, "blob", "sha512", d.Name()))
		for _, b := range blobs {
			if refs[b.Name()] {
				continue
			}
			kl, err := s.keyLock(context.Background(), b.Name())
			if err != nil {
				continue
			}
			if _, err := s.Get(b.Name()); errors.Is(err, ErrNotFound) {
				if os.Remove(filepath.Join(s.dir, "blob", "sha512", d.Name(), b.Name())) == nil {
					rep.Blobs++
				}
			}
			kl.Close()
		}
	}
	return nil
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
