// Package tarx extracts tar entries from untrusted images into a directory
// without ever letting an entry reach outside it.
//
// The rules, enforced for every entry (each violation is an error that names
// the entry):
//
//   - Names are relative; absolute names and ".." components are refused.
//   - Parents are resolved with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS):
//     an entry below a symlink is refused, as is any escape.
//   - Each path appears once; duplicate entries are refused.
//   - Symlinks may point anywhere inside the image: absolute targets are
//     read relative to the image root at run time, as every container does.
//     A relative target that climbs above the image root is refused.
//   - Hardlinks may only point at a regular file extracted earlier from the
//     same image.
//   - Character and block devices are refused: pods get /dev from stage1.
//   - setuid and setgid bits are refused: pods run non-root apps with
//     no_new_privs, where such bits do nothing, and a privilege-raising file
//     has no business in a host-side store. The sticky bit is kept.
//   - Extended attributes: user.*, security.capability and POSIX ACLs are
//     kept; trusted.* (overlayfs reads trusted.overlay.* from lower layers)
//     and any other namespace are refused.
//   - Entries, name lengths and extended attributes are bounded by Limits;
//     the caller bounds the total size (the store counts both the
//     uncompressed stream and the declared size of every file, so a sparse
//     entry cannot write more than the limit).
//
// OCI layers are extracted with ConvertWhiteouts, which turns their
// whiteout entries into overlayfs whiteouts (see whiteout.go).
//
// Ownership (when running as root), modes, extended attributes and
// modification times are preserved. While extracting, the Extractor
// computes a digest of the resulting tree that Verify can recompute from the
// file system alone, so a tree's integrity can be checked without its image.
package tarx

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/fsutil"
)

// ErrUnsafe classifies entries refused by the rules above.
var ErrUnsafe = errors.New("unsafe entry")

// Limits bound what one image may unpack to.
type Limits struct {
	MaxEntries  int
	MaxNameLen  int
	MaxXattrLen int
}

// DefaultLimits are generous for real images and small enough to stop a
// hostile one from exhausting memory or inodes.
var DefaultLimits = Limits{MaxEntries: 1 << 20, MaxNameLen: 4096, MaxXattrLen: 64 << 10}

// Extractor writes entries below a root directory.
type Extractor struct {
	root    int // O_PATH fd of the root directory
	rootDir string
	limits  Limits
	chown   bool
	uid     int
	gid     int

	seen    map[string]*record // cleaned path -> what was extracted
	dirs    []string           // directories, to get their final mode/times last
	parent  string             // cached parent dir and its fd
	parentF int
	buf     []byte
	sum     hash.Hash
	disk    int64 // allocated bytes of what was extracted (DiskUsage)

	// Layer mode (ConvertWhiteouts): nil otherwise.
	wh     map[string]bool // paths extracted as whiteouts
	opaque map[string]bool // directories to mark opaque
}

// record is what the tree digest covers for one path.
type record struct {
	typ     byte
	mode    uint32 // permission bits incl. sticky
	uid     int
	gid     int
	mtime   time.Time
	size    int64
	link    string
	content [sha256.Size]byte
	xattrs  map[string]string
	// implicit marks a directory rkt made (the root, or a parent missing
	// from the archive); one explicit entry may still give its metadata.
	implicit bool
}

// New prepares an extractor into dir, which must exist and be empty.
// Ownership is applied only when chown is true (it needs root); otherwise
// files belong to the caller.
func New(dir string, limits Limits, chown bool) (*Extractor, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	e := &Extractor{root: fd, rootDir: dir, limits: limits, chown: chown,
		uid: os.Geteuid(), gid: os.Getegid(), seen: map[string]*record{},
		parentF: -1, buf: make([]byte, 256<<10), sum: sha256.New()}
	// The root itself is recorded as "."; a "." entry may set its metadata.
	e.seen["."] = &record{typ: tar.TypeDir, mode: 0o755, uid: e.owner(0), gid: e.group(0), mtime: time.Unix(0, 0), implicit: true}
	e.dirs = append(e.dirs, ".")
	return e, nil
}

func (e *Extractor) owner(uid int) int {
	if e.chown {
		return uid
	}
	return e.uid
}

func (e *Extractor) group(gid int) int {
	if e.chown {
		return gid
	}
	return e.gid
}

// Close releases descriptors. It does not remove anything.
func (e *Extractor) Close() {
	if e.parentF >= 0 {
		unix.Close(e.parentF)
		e.parentF = -1
	}
	if e.root >= 0 {
		unix.Close(e.root)
		e.root = -1
	}
}

func unsafef(name, format string, args ...any) error {
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrUnsafe, name, fmt.Sprintf(format, args...))
}

// Clean validates an entry name and returns it in canonical form ("a/b",
// or "." for the root).
func Clean(name string) (string, error) {
	if name == "" {
		return "", unsafef(name, "empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", unsafef(name, "absolute path")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", unsafef(name, "NUL byte in name")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", unsafef(name, `".." path component`)
		}
	}
	return path.Clean(name), nil
}

// Count returns how many entries were extracted so far.
func (e *Extractor) Count() int { return len(e.seen) }

// Add extracts one entry, reading a regular file's content from r. name is
// the entry's path relative to the root (already stripped of any prefix the
// caller uses, such as an ACI's "rootfs/").
func (e *Extractor) Add(name string, hdr *tar.Header, r io.Reader) error {
	if e.limits.MaxNameLen > 0 && (len(name) > e.limits.MaxNameLen || len(hdr.Linkname) > e.limits.MaxNameLen) {
		return unsafef(name, "name longer than %d bytes", e.limits.MaxNameLen)
	}
	p, err := Clean(name)
	if err != nil {
		return err
	}
	if e.limits.MaxEntries > 0 && len(e.seen) >= e.limits.MaxEntries {
		return unsafef(name, "more than %d entries", e.limits.MaxEntries)
	}
	if e.wh != nil {
		if done, err := e.whiteoutEntry(name, p, hdr); done || err != nil {
			return err
		}
	}
	if p == "." && hdr.Typeflag != tar.TypeDir {
		return unsafef(name, "the image root must be a directory")
	}
	if prev, ok := e.seen[p]; ok && !(prev.implicit && hdr.Typeflag == tar.TypeDir) {
		return unsafef(name, "duplicate entry")
	}
	mode := uint32(hdr.Mode) & 0o7777
	if mode&(unix.S_ISUID|unix.S_ISGID) != 0 && hdr.Typeflag != tar.TypeDir {
		return unsafef(name, "setuid/setgid file (mode %04o); rebuild the image without these bits", mode)
	}
	if hdr.Typeflag == tar.TypeDir {
		mode &^= unix.S_ISUID // setgid on directories only steers group inheritance
	}
	xattrs, err := e.xattrs(name, hdr)
	if err != nil {
		return err
	}
	rec := &record{typ: hdr.Typeflag, mode: mode, uid: e.owner(hdr.Uid), gid: e.group(hdr.Gid),
		mtime: hdr.ModTime, xattrs: xattrs}
	if p == "." {
		e.seen["."] = rec
		return nil
	}
	dirfd, err := e.openParent(name, path.Dir(p))
	if err != nil {
		return err
	}
	base := path.Base(p)
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		rec.typ = tar.TypeReg
		err = e.writeFile(dirfd, name, base, rec, r)
	case tar.TypeDir:
		if _, ok := e.seen[p]; ok { // made implicitly as a parent before
			e.seen[p] = rec
			return nil
		}
		if err = unix.Mkdirat(dirfd, base, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: name, Err: err}
		}
		e.countDiskAt(dirfd, base)
		e.dirs = append(e.dirs, p)
	case tar.TypeSymlink:
		if err = e.checkSymlink(name, p, hdr.Linkname); err != nil {
			return err
		}
		rec.link = hdr.Linkname
		if err = unix.Symlinkat(hdr.Linkname, dirfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: name, Err: err}
		}
		e.countDiskAt(dirfd, base)
		err = e.finishNode(dirfd, name, base, rec)
	case tar.TypeLink:
		rec, err = e.hardlink(dirfd, name, base, hdr.Linkname)
	case tar.TypeFifo:
		if err = unix.Mknodat(dirfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return &os.PathError{Op: "mkfifo", Path: name, Err: err}
		}
		err = e.finishNode(dirfd, name, base, rec)
	case tar.TypeChar, tar.TypeBlock:
		return unsafef(name, "device node (%d:%d); pods get their /dev from rkt", hdr.Devmajor, hdr.Devminor)
	default:
		return unsafef(name, "unsupported tar entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	e.seen[p] = rec
	return nil
}

func (e *Extractor) xattrs(name string, hdr *tar.Header) (map[string]string, error) {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if !fsutil.ImageXattr(attr) {
			return nil, unsafef(name, "extended attribute %q is not allowed in images (only user.*, security.capability and POSIX ACLs)", attr)
		}
		if e.limits.MaxXattrLen > 0 && len(v) > e.limits.MaxXattrLen {
			return nil, unsafef(name, "extended attribute %q larger than %d bytes", attr, e.limits.MaxXattrLen)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[attr] = v
	}
	return out, nil
}

// checkSymlink refuses empty or NUL-carrying targets, and relative
// targets that climb above the root (see escapes).
func (e *Extractor) checkSymlink(name, p, target string) error {
	if target == "" {
		return unsafef(name, "symlink with an empty target")
	}
	if strings.IndexByte(target, 0) >= 0 {
		return unsafef(name, "NUL byte in symlink target")
	}
	if e.escapes(path.Dir(p), target) {
		return unsafef(name, "symlink target %q points outside the image", target)
	}
	return nil
}

// maxHops bounds symlink resolution (as the kernel's ELOOP does).
const maxHops = 40

// escapes reports whether resolving target from directory dir climbs above
// the image root, following the image's own symlinks known so far. An
// absolute target restarts at the image root (it is read inside the
// container); only ".." past the root counts as escaping. Finish checks
// every symlink again once all are known, for chains whose links come later
// in the archive.
func (e *Extractor) escapes(dir, target string) bool {
	var cur []string
	if dir != "." && !strings.HasPrefix(target, "/") {
		cur = strings.Split(dir, "/")
	}
	queue := strings.Split(target, "/")
	for hops := 0; len(queue) > 0; {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return true
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, c)
		rec := e.seen[strings.Join(cur, "/")]
		if rec == nil || rec.typ != tar.TypeSymlink {
			continue
		}
		if hops++; hops > maxHops {
			return false // a loop: the kernel refuses it with ELOOP
		}
		cur = cur[:len(cur)-1]
		if strings.HasPrefix(rec.link, "/") {
			cur = nil
		}
		queue = append(strings.Split(rec.link, "/"), queue...)
	}
	return false
}

// openParent returns an fd for dir (relative to the root), creating missing
// directories as root-owned 0755 and refusing symlinks on the way.
func (e *Extractor) openParent(name, dir string) (int, error) {
	if dir == e.parent && e.parentF >= 0 {
		return e.parentF, nil
	}
	if e.parentF >= 0 {
		unix.Close(e.parentF)
		e.parentF = -1
	}
	if dir == "." {
		fd, err := unix.Dup(e.root)
		if err != nil {
			return -1, err
		}
		e.parent, e.parentF = dir, fd
		return fd, nil
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(e.root, dir, how)
	if err == unix.ENOENT {
		if err = e.mkdirAll(name, dir); err != nil {
			return -1, err
		}
		fd, err = unix.Openat2(e.root, dir, how)
	}
	switch err {
	case nil:
	case unix.ELOOP, unix.EXDEV:
		return -1, unsafef(name, "a parent directory is a symlink")
	case unix.ENOTDIR:
		return -1, unsafef(name, "a parent is not a directory")
	default:
		return -1, &os.PathError{Op: "open parent", Path: dir, Err: err}
	}
	e.parent, e.parentF = dir, fd
	return fd, nil
}

func (e *Extractor) mkdirAll(name, dir string) error {
	cur := ""
	for _, c := range strings.Split(dir, "/") {
		if cur == "" {
			cur = c
		} else {
			cur += "/" + c
		}
		if rec, ok := e.seen[cur]; ok {
			if rec.typ != tar.TypeDir {
				return unsafef(name, "parent %q is not a directory", cur)
			}
			continue
		}
		if err := unix.Mkdirat(e.root, cur, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: cur, Err: err}
		}
		e.countDiskAt(e.root, cur)
		e.seen[cur] = &record{typ: tar.TypeDir, mode: 0o755, uid: e.owner(0), gid: e.group(0), mtime: time.Unix(0, 0), implicit: true}
		e.dirs = append(e.dirs, cur)
	}
	return nil
}

func (e *Extractor) writeFile(dirfd int, name, base string, rec *record, r io.Reader) error {
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	e.sum.Reset()
	n, err := e.copySparse(f, r)
	if err != nil {
		return fmt.Errorf("extracting %q: %w", name, err)
	}
	rec.size = n
	copy(rec.content[:], e.sum.Sum(nil))
	if err := e.applyFd(fd, name, rec); err != nil {
		return err
	}
	e.countDisk(fd)
	return setTimes(dirfd, base, name, rec.mtime)
}

// holeBlock is the granularity of hole detection: a block of zeros this
// size, aligned in the file, is skipped rather than written.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// copySparse copies r into f, hashing everything, and seeks over every
// aligned block of zeros instead of writing it, so that a sparse entry
// (GNU or PAX sparse, which archive/tar reads back as zeros) or a file of
// zeros takes no disk space for its holes. It returns the file's length.
func (e *Extractor) copySparse(f *os.File, r io.Reader) (int64, error) {
	var off int64
	for {
		n, rerr := fill(r, e.buf)
		chunk := e.buf[:n]
		e.sum.Write(chunk)
		for len(chunk) > 0 {
			// Write runs of data; skip runs of zero blocks.
			end := 0
			for end < len(chunk) {
				b := min(holeBlock, len(chunk)-end)
				if b == holeBlock && bytes.Equal(chunk[end:end+b], zeroBlock[:]) {
					break
				}
				end += b
			}
			if end > 0 {
				if _, err := f.WriteAt(chunk[:end], off); err != nil {
					return off, err
				}
				off += int64(end)
				chunk = chunk[end:]
			}
			for len(chunk) >= holeBlock && bytes.Equal(chunk[:holeBlock], zeroBlock[:]) {
				off += holeBlock
				chunk = chunk[holeBlock:]
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	// A trailing hole: set the length without writing.
	if err := f.Truncate(off); err != nil {
		return off, err
	}
	return off, nil
}

// fill reads into buf until it is full or r fails; unlike io.ReadFull
// it returns r's own error (io.EOF at the end, io.ErrUnexpectedEOF only
// when r says so: a truncated archive).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// countDisk adds the space fd's file occupies (its allocated blocks, not
// its length) to the extractor's disk usage.
func (e *Extractor) countDisk(fd int) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		e.disk += st.Blocks * 512
	}
}

// countDiskAt is countDisk for a directory entry (a directory: its
// first block; a symlink: its target when not inline).
func (e *Extractor) countDiskAt(dirfd int, base string) {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		e.disk += st.Blocks * 512
	}
}

// DiskUsage returns the disk space the files and directories extracted
// so far occupy (allocated blocks: holes are free, a 1-byte file takes a
// block). Callers bound it as they bound the stream's size.
func (e *Extractor) DiskUsage() int64 { return e.disk }

// applyFd sets ownership, mode and xattrs on an open file or directory.
func (e *Extractor) applyFd(fd int, name string, rec *record) error {
	if e.chown {
		if err := unix.Fchown(fd, rec.uid, rec.gid); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if err := unix.Fchmod(fd, rec.mode); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	for k, v := range rec.xattrs {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return &os.PathError{Op: "setxattr " + k, Path: name, Err: err}
		}
	}
	return nil
}

// finishNode applies metadata to a symlink or fifo by name.
func (e *Extractor) finishNode(dirfd int, name, base string, rec *record) error {
	if e.chown {
		if err := unix.Fchownat(dirfd, base, rec.uid, rec.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if rec.typ == tar.TypeSymlink {
		rec.mode, rec.xattrs = 0o777, nil
	} else if err := unix.Fchmodat(dirfd, base, rec.mode, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	return setTimes(dirfd, base, name, rec.mtime)
}

// hardlink links name to an earlier regular file; the new path shares the
// target's inode, so it is recorded with the target's metadata.
func (e *Extractor) hardlink(dirfd int, name, base, target string) (*record, error) {
	t, err := Clean(target)
	if err != nil {
		return nil, unsafef(name, "hardlink target %q: %v", target, err)
	}
	src, ok := e.seen[t]
	if !ok || src.typ != tar.TypeReg {
		return nil, unsafef(name, "hardlink target %q is not a regular file earlier in the image", target)
	}
	// Recorded regular files were created below symlink-free parents (see
	// openParent), so a root-relative path cannot be redirected.
	if err := unix.Linkat(e.root, t, dirfd, base, 0); err != nil {
		return nil, &os.PathError{Op: "link", Path: name, Err: err}
	}
	cp := *src
	return &cp, nil
}

func setTimes(dirfd int, base, name string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if mtime.IsZero() {
		ts = unix.Timespec{}
	}
	if err := unix.UtimesNanoAt(dirfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: name, Err: err}
	}
	return nil
}

// Finish applies directory metadata (deepest first, so that creating
// children no longer changes a parent's mtime) and returns the tree digest.
func (e *Extractor) Finish() (string, error) {
	if e.parentF >= 0 {
		unix.Close(e.parentF)
		e.parentF = -1
	}
	for p, rec := range e.seen {
		if rec.typ == tar.TypeSymlink && e.escapes(path.Dir(p), rec.link) {
			return "", unsafef(p, "symlink target %q points outside the image (through a symlink later in the archive)", rec.link)
		}
	}
	sort.Slice(e.dirs, func(i, j int) bool { return e.dirs[i] > e.dirs[j] })
	for _, d := range e.dirs {
		rec := e.seen[d]
		e.opaqueXattrs(d, rec)
		fd, err := unix.Openat2(e.root, d, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		if err != nil {
			return "", &os.PathError{Op: "open", Path: d, Err: err}
		}
		err = e.applyFd(fd, d, rec)
		if err == nil {
			ts := unix.NsecToTimespec(rec.mtime.UnixNano())
			if rec.mtime.IsZero() {
				ts = unix.Timespec{}
			}
			err = unix.UtimesNanoAt(fd, "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH)
			if err != nil {
				err = &os.PathError{Op: "utimes", Path: d, Err: err}
			}
		}
		unix.Close(fd)
		if err != nil {
			return "", err
		}
	}
	return digest(e.seen), nil
}

// digest hashes the records in path order.
func digest(recs map[string]*record) string {
	paths := make([]string, 0, len(recs))
	for p := range recs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		r := recs[p]
		fmt.Fprintf(h, "%q %c %o %d %d %d %d %q %x", p, r.typ, r.mode, r.uid, r.gid, r.mtime.Unix(), r.size, r.link, r.content)
		keys := make([]string, 0, len(r.xattrs))
		for k := range r.xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, " %q=%x", k, r.xattrs[k])
		}
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
