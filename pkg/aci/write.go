package aci

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/fsutil"
)

// Layer is a directory tree to put into an image's rootfs. With
// Overlay set, the tree is an overlayfs upper directory: its whiteouts
// (character devices 0:0) delete paths of the layers below, and its opaque
// directories (trusted.overlay.opaque=y) hide what the layers below had in
// them.
type Layer struct {
	Dir     string
	Overlay bool
}

// WriteImage writes an uncompressed ACI: the manifest, then rootfs/ with the
// merged content of the layers (later layers win), entries in path order.
// Ownership, modes, mtimes, hardlinks and the extended attributes images
// may carry are kept.
func WriteImage(w io.Writer, manifest []byte, layers ...Layer) error {
	entries := map[string]string{} // rel path -> source path
	for _, l := range layers {
		if err := mergeLayer(entries, l); err != nil {
			return err
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	links := map[[2]uint64]string{}
	for _, p := range paths {
		if err := writeEntry(tw, p, entries[p], links); err != nil {
			return err
		}
	}
	return tw.Close()
}

func mergeLayer(entries map[string]string, l Layer) error {
	return filepath.WalkDir(l.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(l.Dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if l.Overlay {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 { // whiteout
				deleteTree(entries, rel)
				return nil
			}
			if d.IsDir() && rel != "." && isOpaque(p) {
				deleteTree(entries, rel)
			}
		}
		if _, ok := entries[rel]; ok && !d.IsDir() {
			deleteTree(entries, rel) // a file replacing a directory
		}
		entries[rel] = p
		return nil
	})
}

func isOpaque(p string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func deleteTree(entries map[string]string, rel string) {
	for k := range entries {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(entries, k)
		}
	}
}

func writeEntry(tw *tar.Writer, rel, src string, links map[[2]uint64]string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	name := "rootfs"
	if rel != "." {
		name = "rootfs/" + rel
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(src); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	hdr.Name = name
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatPAX
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		id := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[id]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[id] = name
		}
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		hdr.PAXRecords = xattrRecords(src)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// xattrRecords returns the extended attributes images may carry, as PAX
// records.
func xattrRecords(p string) map[string]string {
	attrs, _ := fsutil.ImageXattrs(p)
	if len(attrs) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range attrs {
		out["SCHILY.xattr."+k] = v
	}
	return out
}
