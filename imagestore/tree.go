package imagestore

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/fsutil"
	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/tarx"
)

// A tree directory holds:
//
//	rootfs/    the rendered root file system (an overlayfs lower layer)
//	manifest   the image manifest
//	hash       the tree digest recorded when it was rendered
//	rendered   the completion marker: a tree without it is not valid
const markerFile = "rendered"

// ErrTreeInvalid is returned by VerifyTree when a tree does not match the
// digest recorded at render time.
var ErrTreeInvalid = errors.New("tree does not match its recorded digest")

// treeValid reports whether the tree exists and is complete.
func (s *Store) treeValid(treeID string) bool {
	_, err := os.Stat(filepath.Join(s.TreePath(treeID), markerFile))
	return err == nil
}

// TreeRootfs returns the rootfs of an image's rendered tree, after
// checking the tree's completion marker (one stat: trees are never
// re-hashed on the run path).
func (s *Store) TreeRootfs(info *ImageInfo) (string, error) {
	if len(info.Layers) > 0 {
		return "", fmt.Errorf("image %s has %d layers, each with its tree: no single rootfs (use LowerDirs)", ShortKey(info.Key), len(info.Layers))
	}
	if !s.treeValid(info.TreeID) {
		return "", fmt.Errorf("image %s has no rendered tree (%s): fetch it again", ShortKey(info.Key), info.TreeID)
	}
	return filepath.Join(s.TreePath(info.TreeID), "rootfs"), nil
}

// newWorkDir makes a work area in tmp/ and holds a lock on it for as long
// as the caller works there, so that SweepTmp never removes it.
func (s *Store) newWorkDir(kind string) (string, *lock.Lock, error) {
	var b [8]byte
	rand.Read(b[:])
	dir := filepath.Join(s.TmpDir(), kind+"-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, err
	}
	// A store shared with a group has a setgid cas/ (dist/tmpfiles.d),
	// which new directories inherit: trees must not, or an image's
	// directories would take the group and the bit.
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	l, err := lock.Open(dir)
	if err == nil {
		err = l.TryExclusive()
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, l, nil
}

// SweepTmp removes work areas and downloads left by processes that died.
// Work areas in use are locked and skipped; partial downloads (".part",
// kept for resuming) are removed once older than maxAge.
func (s *Store) SweepTmp(maxAge time.Duration) error {
	ents, err := os.ReadDir(s.TmpDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		p := filepath.Join(s.TmpDir(), e.Name())
		if e.IsDir() {
			l, err := lock.Open(p)
			if err != nil {
				continue
			}
			if l.TryExclusive() == nil {
				os.RemoveAll(p)
			}
			l.Close()
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > maxAge {
			l, err := lock.Open(p)
			if err != nil {
				continue
			}
			if l.TryExclusive() == nil {
				os.Remove(p)
			}
			l.Close()
		}
	}
	return nil
}

// installTree makes a work tree durable (unless the caller already
// synced the file system), marks it complete and renames it into place as
// treeID, replacing any incomplete leftover.
func (s *Store) installTree(work, treeID string, synced bool) error {
	if !synced {
		if err := durable.syncFS(work); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(work, markerFile), nil, 0o640); err != nil {
		return err
	}
	dst := s.TreePath(treeID)
	if _, err := os.Lstat(dst); err == nil {
		if s.treeValid(treeID) {
			return os.RemoveAll(work) // rendered meanwhile by another process
		}
		if err := s.removeTree(treeID); err != nil {
			return err
		}
	}
	if err := durable.rename(work, dst); err != nil {
		return err
	}
	return durable.fsync(filepath.Dir(dst))
}

// removeTree deletes the marker first, so that a half-deleted tree is
// never taken as valid, then moves the tree to tmp/ and deletes it there.
func (s *Store) removeTree(treeID string) error {
	dst := s.TreePath(treeID)
	if err := os.Remove(filepath.Join(dst, markerFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	trash, l, err := s.newWorkDir("trash")
	if err != nil {
		return err
	}
	defer l.Close()
	if err := os.Rename(dst, filepath.Join(trash, "t")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.RemoveAll(trash)
}

// VerifyTree recomputes the digest of each of an image's trees (an ACI's
// one, or every layer's) and compares it with the one recorded at render
// time.
func (s *Store) VerifyTree(info *ImageInfo) error {
	for _, t := range info.Trees() {
		if err := s.verifyTree(info, t); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) verifyTree(info *ImageInfo, treeID string) error {
	dir := s.TreePath(treeID)
	if treeID == "" || !s.treeValid(treeID) {
		return fmt.Errorf("image %s: tree %s is missing or incomplete: %w", ShortKey(info.Key), treeID, ErrTreeInvalid)
	}
	want, err := os.ReadFile(filepath.Join(dir, "hash"))
	if err != nil {
		return fmt.Errorf("image %s: reading recorded tree digest: %w", ShortKey(info.Key), err)
	}
	got, err := tarx.Digest(filepath.Join(dir, "rootfs"))
	if err != nil {
		return fmt.Errorf("image %s: hashing tree: %w", ShortKey(info.Key), err)
	}
	if strings.TrimSpace(string(want)) != got {
		return fmt.Errorf("image %s: tree %s digest is %s, recorded %s: %w (remove and fetch the image again)",
			ShortKey(info.Key), treeID, got, strings.TrimSpace(string(want)), ErrTreeInvalid)
	}
	return nil
}

// RenderDeps builds the tree of an image that has dependencies or a path
// whitelist: the layers (dependency trees in application order, the image
// last) are merged by hard-linking into one new tree, later layers
// replacing earlier ones, then filtered by the image's pathWhitelist. It
// records the tree on the image's index row.
//
// layers are image keys, lowest first; the last one is the image itself.
func (s *Store) RenderDeps(ctx context.Context, key string, layers []string) (string, error) {
	h := sha512.Sum512([]byte(strings.Join(layers, ",")))
	treeID := "deps-sha512-" + hex.EncodeToString(h[:32])
	info, err := s.Get(key)
	if err != nil {
		return "", err
	}
	m, err := info.ParsedManifest()
	if err != nil {
		return "", err
	}
	rl, err := s.keyLock(ctx, treeID) // one renderer per tree
	if err != nil {
		return "", err
	}
	defer rl.Close()
	ul, err := s.UseTree(ctx, treeID) // not a leftover for gc until indexed
	if err != nil {
		return "", err
	}
	defer ul.Close()
	if !s.treeValid(treeID) {
		work, wl, err := s.newWorkDir("render")
		if err != nil {
			return "", err
		}
		defer func() { os.RemoveAll(work); wl.Close() }()
		root := filepath.Join(work, "rootfs")
		if err := os.Mkdir(root, 0o755); err != nil {
			return "", err
		}
		dirTimes := map[string]unix.Timespec{}
		for _, l := range layers {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			if !s.treeValid(l) {
				return "", fmt.Errorf("rendering %s: dependency %s has no tree: fetch it again", ShortKey(key), ShortKey(l))
			}
			if err := mergeTree(filepath.Join(s.TreePath(l), "rootfs"), root, dirTimes); err != nil {
				return "", fmt.Errorf("rendering %s: applying %s: %w", ShortKey(key), ShortKey(l), err)
			}
		}
		if len(m.PathWhitelist) > 0 {
			if err := applyWhitelist(root, m.PathWhitelist); err != nil {
				return "", fmt.Errorf("rendering %s: applying pathWhitelist: %w", ShortKey(key), err)
			}
		}
		if err := setDirTimes(root, dirTimes); err != nil {
			return "", err
		}
		digest, err := tarx.Digest(root)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(work, "manifest"), info.Manifest, 0o640); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(work, "hash"), []byte(digest+"\n"), 0o640); err != nil {
			return "", err
		}
		if err := s.installTree(work, treeID, false); err != nil {
			return "", err
		}
	}
	err = s.update(true, func(tx *bolt.Tx) error {
		cur, err := getImage(tx, key)
		if err != nil || cur == nil {
			return err
		}
		cur.TreeID, cur.Deps = treeID, layers[:len(layers)-1]
		return putImage(tx, cur)
	})
	return treeID, err
}

// mergeTree hard-links every entry of src into dst. Directories are
// created (taking src's metadata); a non-directory replaces whatever dst
// had at that path; a directory replaces a non-directory.
// The mtime of each directory (from the last layer that has it) is put in
// dirTimes, for setDirTimes once every layer is in.
func mergeTree(src, dst string, dirTimes map[string]unix.Timespec) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		cur, lerr := os.Lstat(target)
		if d.IsDir() {
			if lerr == nil && !cur.IsDir() {
				if err := os.Remove(target); err != nil {
					return err
				}
				lerr = os.ErrNotExist
			}
			if lerr != nil {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirTimes[rel] = fsutil.Timespec(fi.Sys().(*syscall.Stat_t).Mtim)
			return copyDirMeta(target, fi)
		}
		if lerr == nil {
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			// A directory replaced by a file or symlink takes its subtree's
			// pending times with it: setting them would follow the link.
			for k := range dirTimes {
				if k == rel || strings.HasPrefix(k, rel+"/") {
					delete(dirTimes, k)
				}
			}
		}
		return unix.Linkat(unix.AT_FDCWD, p, unix.AT_FDCWD, target, 0)
	})
}

func copyDirMeta(dst string, fi fs.FileInfo) error {
	st := fi.Sys().(*syscall.Stat_t)
	if os.Geteuid() == 0 {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return unix.Chmod(dst, uint32(st.Mode)&0o7777)
}

// setDirTimes gives directories their layers' mtimes, deepest first so
// that no later change moves a parent's.
func setDirTimes(root string, times map[string]unix.Timespec) error {
	rels := make([]string, 0, len(times))
	for r := range times {
		rels = append(rels, r)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(rels)))
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFd)
	for _, r := range rels {
		// Never through a symlink: the tree is the image's, not ours.
		fd, err := unix.Openat2(rootFd, r, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
			continue // removed by the whitelist, or replaced
		}
		if err != nil {
			return &os.PathError{Op: "open", Path: r, Err: err}
		}
		ts := times[r]
		err = unix.UtimesNanoAt(fd, "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH)
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "utimes", Path: r, Err: err}
		}
	}
	return nil
}

// applyWhitelist removes every non-directory not listed, then the
// directories left empty that are not listed either.
func applyWhitelist(root string, list []string) error {
	keep := map[string]bool{}
	for _, p := range list {
		keep[path.Clean("/"+p)] = true
	}
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+"/"))
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		if !keep[rel] {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(dirs[i], root+"/"))
		if !keep[rel] {
			os.Remove(dirs[i]) // fails (and is kept) when not empty
		}
	}
	return nil
}
