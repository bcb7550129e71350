package tarx

import (
	"archive/tar"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OCI layers (and Docker's) mark deletions with whiteout entries: an entry
// ".wh.NAME" removes NAME of the layers below, and an entry ".wh..wh..opq"
// in a directory hides everything the layers below have in it. With
// ConvertWhiteouts the extractor turns them into what overlayfs reads in a
// lower layer, so that a layer's tree can be stacked as it is:
//
//   - ".wh.NAME" becomes NAME as a character device 0/0 (needs CAP_MKNOD);
//   - ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory (needs
//     CAP_SYS_ADMIN).
//
// A whiteout applies only to the layers below (OCI image spec): an entry
// of the same layer with the same name replaces the whiteout, and a
// directory of the same layer that was whited out becomes opaque (its
// lower contents stay hidden, its own show). Every other rule of this
// package still holds; whiteouts are entries, counted against MaxEntries,
// and a name with ".wh." in a parent component is refused.
const (
	WhiteoutPrefix = ".wh."
	OpaqueMarker   = ".wh..wh..opq"
	// OpaqueXattr is the overlayfs attribute of an opaque directory.
	OpaqueXattr = "trusted.overlay.opaque"
)

// ConvertWhiteouts switches the extractor to OCI layer mode (see above).
// Call it before the first Add.
func (e *Extractor) ConvertWhiteouts() {
	e.wh = map[string]bool{}
	e.opaque = map[string]bool{}
}

// whiteoutEntry handles name (cleaned to p) in layer mode. It reports
// whether the entry was a whiteout (and so is done), after replacing any
// whiteout that p or one of its parents shadows in this same layer.
func (e *Extractor) whiteoutEntry(name, p string, hdr *tar.Header) (bool, error) {
	if p == "." {
		return false, nil
	}
	parts := strings.Split(p, "/")
	for _, c := range parts[:len(parts)-1] {
		if strings.HasPrefix(c, WhiteoutPrefix) {
			return true, unsafef(name, "entry below a whiteout")
		}
	}
	dir, base := path.Dir(p), path.Base(p)
	if base == OpaqueMarker {
		return true, e.addOpaque(name, dir)
	}
	if t, ok := strings.CutPrefix(base, WhiteoutPrefix); ok {
		if t == "" || t == "." || t == ".." {
			return true, unsafef(name, "whiteout of %q", t)
		}
		return true, e.addWhiteout(name, path.Join(dir, t))
	}
	// A same-layer entry at (or below) a whited-out path replaces the
	// whiteout: the path becomes this layer's, and a directory opaque.
	cur := ""
	for i, c := range parts {
		cur = path.Join(cur, c)
		if !e.wh[cur] {
			continue
		}
		if err := e.unlinkWhiteout(name, cur); err != nil {
			return true, err
		}
		if i < len(parts)-1 || hdr.Typeflag == tar.TypeDir {
			e.opaque[cur] = true
		}
	}
	return false, nil
}

func (e *Extractor) addOpaque(name, dir string) error {
	if rec, ok := e.seen[dir]; ok {
		if rec.typ != tar.TypeDir {
			return unsafef(name, "opaque marker in a non-directory")
		}
	} else if err := e.mkdirAll(name, dir); err != nil {
		return err
	}
	e.opaque[dir] = true
	return nil
}

func (e *Extractor) addWhiteout(name, target string) error {
	if rec, ok := e.seen[target]; ok {
		// This layer has the path already: the whiteout hides only the
		// lower layers', which for a directory means opaque.
		if rec.typ == tar.TypeDir && !e.wh[target] {
			e.opaque[target] = true
		}
		return nil
	}
	if e.limits.MaxEntries > 0 && len(e.seen) >= e.limits.MaxEntries {
		return unsafef(name, "more than %d entries", e.limits.MaxEntries)
	}
	dirfd, err := e.openParent(name, path.Dir(target))
	if err != nil {
		return err
	}
	base := path.Base(target)
	if err := unix.Mknodat(dirfd, base, unix.S_IFCHR, 0); err != nil {
		if err == unix.EPERM {
			return &os.PathError{Op: "whiteout (needs CAP_MKNOD: run as root)", Path: name, Err: err}
		}
		return &os.PathError{Op: "whiteout", Path: name, Err: err}
	}
	rec := &record{typ: tar.TypeChar, uid: e.uid, gid: e.gid, mtime: time.Unix(0, 0)}
	if err := setTimes(dirfd, base, name, rec.mtime); err != nil {
		return err
	}
	e.countDiskAt(dirfd, base)
	e.seen[target] = rec
	e.wh[target] = true
	return nil
}

func (e *Extractor) unlinkWhiteout(name, p string) error {
	dirfd, err := e.openParent(name, path.Dir(p))
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, path.Base(p), 0); err != nil {
		return &os.PathError{Op: "unlink whiteout", Path: p, Err: err}
	}
	delete(e.seen, p)
	delete(e.wh, p)
	return nil
}

// opaqueXattrs adds the opaque attribute to a directory's record.
func (e *Extractor) opaqueXattrs(d string, rec *record) {
	if !e.opaque[d] {
		return
	}
	x := map[string]string{OpaqueXattr: "y"}
	for k, v := range rec.xattrs {
		x[k] = v
	}
	rec.xattrs = x
}
