// Package fsutil has file-system helpers shared by stage0 and the store:
// a metadata-preserving tree copy.
package fsutil

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// CopyTree copies src into dst (which must not exist), keeping types,
// modes, ownership (when run as root), extended attributes, hardlinks
// within the tree and modification times.
func CopyTree(src, dst string) error {
	root := os.Geteuid() == 0
	links := map[[2]uint64]string{} // (dev, ino) -> first copy, for hardlinks
	dirTimes := map[string]unix.Timespec{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch fi.Mode().Type() {
		case fs.ModeDir:
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirTimes[target] = Timespec(st.Mtim)
		case fs.ModeSymlink:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case fs.ModeNamedPipe:
			if err := unix.Mkfifo(target, 0o600); err != nil {
				return &os.PathError{Op: "mkfifo", Path: target, Err: err}
			}
		case 0:
			id := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[id]; ok && st.Nlink > 1 {
				return os.Link(first, target)
			}
			links[id] = target
			if err := copyFile(p, target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: cannot copy file of type %v", p, fi.Mode().Type())
		}
		return applyMeta(p, target, st, fi.Mode().Type() == fs.ModeSymlink, root)
	})
	if err != nil {
		return err
	}
	dirs := make([]string, 0, len(dirTimes))
	for d := range dirTimes {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		ts := dirTimes[d]
		if err := unix.UtimesNano(d, []unix.Timespec{ts, ts}); err != nil {
			return &os.PathError{Op: "utimes", Path: d, Err: err}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func applyMeta(src, dst string, st *syscall.Stat_t, symlink, root bool) error {
	if root {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if !symlink {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
		if err := copyXattrs(src, dst); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{Timespec(st.Atim), Timespec(st.Mtim)}, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	attrs, err := ImageXattrs(src)
	if err != nil {
		return err
	}
	for k, v := range attrs {
		if err := unix.Lsetxattr(dst, k, []byte(v), 0); err != nil {
			return &os.PathError{Op: "setxattr " + k, Path: dst, Err: err}
		}
	}
	return nil
}

// Timespec converts a stat time to the form utimensat takes.
func Timespec(t syscall.Timespec) unix.Timespec { return unix.Timespec{Sec: t.Sec, Nsec: t.Nsec} }
