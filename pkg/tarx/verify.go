package tarx

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/fsutil"
)

// Digest recomputes, from the file system alone, the digest that Finish
// returned for the tree at dir. Comparing the two detects any change to
// content, type, ownership, mode, link target, extended attribute or mtime.
func Digest(dir string) (string, error) {
	recs := map[string]*record{}
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		r := &record{uid: int(st.Uid), gid: int(st.Gid), mode: uint32(st.Mode) & 0o7777,
			mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
		switch fi.Mode().Type() {
		case 0:
			r.typ = tar.TypeReg
			r.size = fi.Size()
			if err := hashFile(p, buf, r); err != nil {
				return err
			}
		case fs.ModeDir:
			r.typ = tar.TypeDir
		case fs.ModeSymlink:
			r.typ, r.mode = tar.TypeSymlink, 0o777
			if r.link, err = os.Readlink(p); err != nil {
				return err
			}
		case fs.ModeNamedPipe:
			r.typ = tar.TypeFifo
		case fs.ModeDevice | fs.ModeCharDevice:
			if st.Rdev != 0 {
				return fmt.Errorf("%s: device node in a tree", p)
			}
			r.typ = tar.TypeChar // an overlayfs whiteout (ConvertWhiteouts)
		default:
			return fmt.Errorf("%s: unexpected file type %v in a tree", p, fi.Mode().Type())
		}
		if r.typ != tar.TypeSymlink {
			if r.xattrs, err = fsutil.ImageXattrs(p); err != nil {
				return err
			}
			if r.typ == tar.TypeDir {
				if err := opaqueOf(p, r); err != nil {
					return err
				}
			}
		}
		recs[filepath.ToSlash(rel)] = r
		return nil
	})
	if err != nil {
		return "", err
	}
	return digest(recs), nil
}

func hashFile(p string, buf []byte, r *record) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return err
	}
	copy(r.content[:], h.Sum(nil))
	return nil
}

// opaqueOf adds a directory's overlayfs opaque attribute to its record, so
// that Digest covers what ConvertWhiteouts set.
func opaqueOf(p string, r *record) error {
	var v [8]byte
	n, err := unix.Lgetxattr(p, OpaqueXattr, v[:])
	switch err {
	case nil:
	case unix.ENODATA, unix.ENOTSUP, unix.EPERM:
		return nil
	default:
		return &os.PathError{Op: "getxattr " + OpaqueXattr, Path: p, Err: err}
	}
	if r.xattrs == nil {
		r.xattrs = map[string]string{}
	}
	r.xattrs[OpaqueXattr] = string(v[:n])
	return nil
}
