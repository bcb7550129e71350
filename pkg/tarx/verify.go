package tarx

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
		default:
			return fmt.Errorf("%s: unexpected file type %v in a tree", p, fi.Mode().Type())
		}
		if r.typ != tar.TypeSymlink {
			if r.xattrs, err = readXattrs(p); err != nil {
				return err
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

// readXattrs returns the attributes of the kinds extraction may set.
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if err == unix.ENOTSUP {
			err = nil
		}
		return nil, err
	}
	names := make([]byte, sz)
	if sz, err = unix.Llistxattr(p, names); err != nil {
		return nil, err
	}
	var out map[string]string
	for _, k := range strings.Split(strings.TrimRight(string(names[:sz]), "\x00"), "\x00") {
		if !(strings.HasPrefix(k, "user.") || k == "security.capability" || strings.HasPrefix(k, "system.posix_acl_")) {
			continue
		}
		vsz, err := unix.Lgetxattr(p, k, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vsz)
		if vsz, err = unix.Lgetxattr(p, k, v); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = string(v[:vsz])
	}
	return out, nil
}
