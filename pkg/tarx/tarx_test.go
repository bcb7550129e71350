package tarx_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/tarx"

	"github.com/rkt/rkt/pkg/testutil"
)

// entry is one tar entry to hand to Extractor.Add.
type entry struct {
	name string
	hdr  tar.Header
	body string
}

var t2001 = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func file(name string, mode int64, body string) entry {
	return entry{name, tar.Header{Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body)), ModTime: t2001}, body}
}

func dir(name string, mode int64) entry {
	return entry{name, tar.Header{Typeflag: tar.TypeDir, Mode: mode, ModTime: t2001}, ""}
}

func symlink(name, target string) entry {
	return entry{name, tar.Header{Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: t2001}, ""}
}

func hardlink(name, target string) entry {
	return entry{name, tar.Header{Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644, ModTime: t2001}, ""}
}

// fixture is an extraction root next to an "outside" directory that no
// entry may ever reach.
type fixture struct {
	root, outside string
	ex            *tarx.Extractor
}

func newFixture(t *testing.T, limits tarx.Limits, chown bool) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{f.root, f.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ex, err := tarx.New(f.root, limits, chown)
	if err != nil {
		t.Fatalf("New(%s): %v", f.root, err)
	}
	t.Cleanup(ex.Close)
	f.ex = ex
	return f
}

func (f *fixture) add(e entry) error {
	h := e.hdr
	h.Name = e.name
	return f.ex.Add(e.name, &h, strings.NewReader(e.body))
}

func (f *fixture) mustAdd(t *testing.T, es ...entry) {
	t.Helper()
	for _, e := range es {
		if err := f.add(e); err != nil {
			t.Fatalf("Add(%q): %v", e.name, err)
		}
	}
}

// assertOutsideEmpty fails when anything was written next to the root.
func (f *fixture) assertOutsideEmpty(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(f.outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("extraction wrote %s outside its root", filepath.Join(f.outside, e.Name()))
	}
	parent, err := os.ReadDir(filepath.Dir(f.root))
	if err != nil {
		t.Fatal(err)
	}
	if len(parent) != 2 {
		var names []string
		for _, e := range parent {
			names = append(names, e.Name())
		}
		t.Errorf("the root's parent holds %v, want only root and outside", names)
	}
}

func lstat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func TestClean(t *testing.T) {
	good := map[string]string{
		"a":       "a",
		"a/b":     "a/b",
		"./a/b":   "a/b",
		"a//b/":   "a/b",
		"a/./b":   "a/b",
		".":       ".",
		"./":      ".",
		"a/b..":   "a/b..",
		"..a/b":   "..a/b",
		"a/...":   "a/...",
		"dir/./.": "dir",
	}
	for in, want := range good {
		got, err := tarx.Clean(in)
		if err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v; want %q, nil", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "/etc/passwd", "..", "../x", "a/../../x", "a/..", "a/../b", "a\x00b", "//x"} {
		got, err := tarx.Clean(in)
		if err == nil || !errors.Is(err, tarx.ErrUnsafe) {
			t.Errorf("Clean(%q) = %q, %v; want an ErrUnsafe error", in, got, err)
		}
	}
}

func TestExtractKeepsMetadata(t *testing.T) {
	f := newFixture(t, tarx.DefaultLimits, false)
	t1999 := time.Date(1999, 12, 31, 23, 59, 58, 0, time.UTC)
	withX := file("x/attr", 0o600, "attrs")
	withX.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.rkt-test": "value\x00with nul"}
	fifo := entry{"x/fifo", tar.Header{Typeflag: tar.TypeFifo, Mode: 0o640, ModTime: t2001}, ""}
	f.mustAdd(t,
		file("a/b/c/deep", 0o751, "deep file"), // a, a/b, a/b/c made implicitly
		dir("x", 0o755),
		file("x/plain", 0o640, "hello"),
		withX,
		fifo,
		symlink("x/rel", "plain"),
		symlink("x/abs", "/etc/passwd"), // absolute: resolved in the image root at run time
		hardlink("x/hard", "x/plain"),
		dir("sticky", 0o1777),
		dir("sgid", 0o2755),
		dir("suid", 0o4755), // setuid means nothing on a directory: dropped
		entry{"a", tar.Header{Typeflag: tar.TypeDir, Mode: 0o700, ModTime: t1999}, ""}, // metadata of an implicit parent, given late
		entry{".", tar.Header{Typeflag: tar.TypeDir, Mode: 0o750, ModTime: t1999}, ""},
	)
	sum, err := f.ex.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	f.assertOutsideEmpty(t)

	checks := []struct {
		path  string
		mode  uint32 // type and permission bits
		mtime time.Time
	}{
		{".", unix.S_IFDIR | 0o750, t1999},
		{"a", unix.S_IFDIR | 0o700, t1999},
		{"a/b", unix.S_IFDIR | 0o755, time.Time{}},
		{"a/b/c", unix.S_IFDIR | 0o755, time.Time{}},
		{"a/b/c/deep", unix.S_IFREG | 0o751, t2001},
		{"x", unix.S_IFDIR | 0o755, t2001},
		{"x/plain", unix.S_IFREG | 0o640, t2001},
		{"x/attr", unix.S_IFREG | 0o600, t2001},
		{"x/fifo", unix.S_IFIFO | 0o640, t2001},
		{"x/rel", unix.S_IFLNK | 0o777, t2001},
		{"x/abs", unix.S_IFLNK | 0o777, t2001},
		{"sticky", unix.S_IFDIR | 0o1777, t2001},
		{"sgid", unix.S_IFDIR | 0o2755, t2001},
		{"suid", unix.S_IFDIR | 0o755, t2001},
	}
	for _, c := range checks {
		st := lstat(t, filepath.Join(f.root, c.path))
		if st.Mode != c.mode {
			t.Errorf("%s: mode %o, want %o", c.path, st.Mode, c.mode)
		}
		got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		if !c.mtime.IsZero() && !got.Equal(c.mtime) {
			t.Errorf("%s: mtime %v, want %v (directories must keep theirs after children are added)", c.path, got.UTC(), c.mtime)
		}
		if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
			t.Errorf("%s: owner %d:%d, want the caller's %d:%d when chown is off", c.path, st.Uid, st.Gid, os.Geteuid(), os.Getegid())
		}
	}
	if b, err := os.ReadFile(filepath.Join(f.root, "a/b/c/deep")); err != nil || string(b) != "deep file" {
		t.Errorf("deep file content %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(f.root, "x/abs")); err != nil || l != "/etc/passwd" {
		t.Errorf("x/abs -> %q, %v; want /etc/passwd kept verbatim", l, err)
	}
	a, b := lstat(t, filepath.Join(f.root, "x/plain")), lstat(t, filepath.Join(f.root, "x/hard"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("x/hard is not a hard link of x/plain (inodes %d, %d, nlink %d)", a.Ino, b.Ino, a.Nlink)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(f.root, "x/attr"), "user.rkt-test", buf)
	if err != nil {
		t.Errorf("xattr user.rkt-test: %v", err)
	} else if string(buf[:n]) != "value\x00with nul" {
		t.Errorf("xattr user.rkt-test = %q", buf[:n])
	}

	if !strings.HasPrefix(sum, "sha256:") {
		t.Errorf("Finish digest %q does not start with sha256:", sum)
	}
	again, err := tarx.Digest(f.root)
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	if again != sum {
		t.Errorf("Digest of the extracted tree = %s, Finish returned %s", again, sum)
	}
}

func TestExtractChownsAsRoot(t *testing.T) {
	testutil.RequireRoot(t) // ownership
	f := newFixture(t, tarx.DefaultLimits, true)
	owned := func(e entry, uid, gid int) entry { e.hdr.Uid, e.hdr.Gid = uid, gid; return e }
	f.mustAdd(t,
		owned(dir("d", 0o710), 42, 43),
		owned(file("d/f", 0o640, "x"), 1234, 5678),
		owned(symlink("d/l", "f"), 7, 8),
		owned(entry{"d/p", tar.Header{Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: t2001}, ""}, 9, 10),
		owned(file("implicit/f", 0o644, "y"), 11, 12),
	)
	sum, err := f.ex.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][2]uint32{"d": {42, 43}, "d/f": {1234, 5678}, "d/l": {7, 8}, "d/p": {9, 10},
		"implicit": {0, 0}, "implicit/f": {11, 12}} {
		st := lstat(t, filepath.Join(f.root, p))
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
	if d, err := tarx.Digest(f.root); err != nil || d != sum {
		t.Errorf("Digest = %s, %v; want %s", d, err, sum)
	}
}

// TestExtractRefuses runs each hostile sequence: every entry but the last
// must be accepted, the last refused with ErrUnsafe naming it, and nothing
// may appear outside the root.
func TestExtractRefuses(t *testing.T) {
	bigX := file("f", 0o644, "x")
	bigX.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 65<<10)}
	trusted := file("f", 0o644, "x")
	trusted.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
	selinux := file("f", 0o644, "x")
	selinux.hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.selinux": "system_u:object_r:bin_t:s0"}

	cases := []struct {
		desc    string
		outside bool // the sequence names the outside directory: %OUT% is replaced
		es      []entry
		want    string // in the error
	}{
		{"absolute path", false, []entry{file("/etc/passwd", 0o644, "x")}, "absolute"},
		{"dot-dot", false, []entry{file("../escape", 0o644, "x")}, `".."`},
		{"dot-dot deep", false, []entry{dir("a", 0o755), file("a/../../escape", 0o644, "x")}, `".."`},
		{"dot-dot inside", false, []entry{file("a/../b", 0o644, "x")}, `".."`},
		{"NUL in name", false, []entry{file("a\x00b", 0o644, "x")}, "NUL"},
		{"duplicate file", false, []entry{file("f", 0o644, "1"), file("f", 0o644, "2")}, "duplicate"},
		{"duplicate spelled differently", false, []entry{file("d/f", 0o644, "1"), file("./d//f", 0o644, "2")}, "duplicate"},
		{"duplicate directory", false, []entry{dir("d", 0o755), dir("d/", 0o700)}, "duplicate"},
		{"file over implicit directory", false, []entry{file("d/f", 0o644, "1"), file("d", 0o644, "2")}, "duplicate"},
		{"directory over symlink", false, []entry{symlink("d", "x"), dir("d", 0o755)}, "duplicate"},
		{"root twice", false, []entry{dir(".", 0o755), dir("./", 0o755)}, "duplicate"},
		{"root not a directory", false, []entry{file(".", 0o644, "x")}, `"."`},
		{"under a symlink to outside", true, []entry{symlink("l", "%OUT%"), file("l/pwned", 0o644, "x")}, "symlink"},
		{"under a symlink to the root", false, []entry{symlink("l", "."), file("l/x", 0o644, "x")}, "symlink"},
		{"under a symlink inside", false, []entry{dir("real", 0o755), symlink("l", "real"), file("l/x", 0o644, "x")}, "symlink"},
		{"deep under a symlink", true, []entry{dir("a", 0o755), symlink("a/l", "%OUT%"), file("a/l/b/c", 0o644, "x")}, "symlink"},
		{"directory under a symlink", true, []entry{symlink("l", "%OUT%"), dir("l/sub", 0o755)}, "symlink"},
		{"symlink under a symlink", true, []entry{symlink("l", "%OUT%"), symlink("l/s", "/etc/shadow")}, "symlink"},
		{"under a file", false, []entry{file("f", 0o644, "x"), file("f/x", 0o644, "x")}, "not a directory"},
		{"under a file, deep", false, []entry{file("f", 0o644, "x"), file("f/x/y", 0o644, "x")}, "not a directory"},
		{"relative symlink out", false, []entry{symlink("l", "../etc/passwd")}, "outside the image"},
		{"relative symlink out, deep", false, []entry{dir("a", 0o755), symlink("a/l", "../../etc")}, "outside the image"},
		{"relative symlink out, through a name", false, []entry{symlink("l", "x/../../etc")}, "outside the image"},
		{"empty symlink", false, []entry{symlink("l", "")}, "empty target"},
		{"hardlink out by dot-dot", false, []entry{hardlink("h", "../etc/passwd")}, "hardlink"},
		{"hardlink out by absolute name", false, []entry{hardlink("h", "/etc/passwd")}, "hardlink"},
		{"hardlink to a missing file", false, []entry{hardlink("h", "nothing")}, "not a regular file earlier"},
		{"hardlink to a symlink", true, []entry{symlink("l", "%OUT%/target"), hardlink("h", "l")}, "not a regular file"},
		{"hardlink to a directory", false, []entry{dir("d", 0o755), hardlink("h", "d")}, "not a regular file"},
		{"hardlink to the root", false, []entry{hardlink("h", ".")}, "not a regular file"},
		{"character device", false, []entry{{"dev/null", tar.Header{Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, ""}}, "device node"},
		{"block device", false, []entry{{"sda", tar.Header{Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8}, ""}}, "device node"},
		{"setuid file", false, []entry{file("bin/su", 0o4755, "x")}, "setuid"},
		{"setgid file", false, []entry{file("bin/wall", 0o2755, "x")}, "setuid/setgid"},
		{"setuid symlink", false, []entry{{"l", tar.Header{Typeflag: tar.TypeSymlink, Linkname: "x", Mode: 0o4777}, ""}}, "setuid"},
		{"setuid fifo", false, []entry{{"p", tar.Header{Typeflag: tar.TypeFifo, Mode: 0o4644}, ""}}, "setuid"},
		{"trusted xattr", false, []entry{trusted}, "trusted.overlay.opaque"},
		{"selinux xattr", false, []entry{selinux}, "security.selinux"},
		{"oversized xattr", false, []entry{bigX}, "larger than"},
		{"unknown type", false, []entry{{"odd", tar.Header{Typeflag: 'Z', Mode: 0o644}, ""}}, "unsupported"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			f := newFixture(t, tarx.DefaultLimits, false)
			for i, e := range c.es {
				e.name = strings.ReplaceAll(e.name, "%OUT%", f.outside)
				e.hdr.Linkname = strings.ReplaceAll(e.hdr.Linkname, "%OUT%", f.outside)
				err := f.add(e)
				if i < len(c.es)-1 {
					if err != nil {
						t.Fatalf("setup entry %q refused: %v", e.name, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("entry %q (%c) accepted, want it refused (%s)", e.name, e.hdr.Typeflag, c.want)
				}
				if !errors.Is(err, tarx.ErrUnsafe) {
					t.Errorf("error %v is not ErrUnsafe", err)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q does not say %q", err, c.want)
				}
				if !strings.Contains(err.Error(), e.name) && !strings.Contains(err.Error(), strconv.Quote(e.name)) {
					t.Errorf("error %q does not name the entry %q", err, e.name)
				}
			}
			f.assertOutsideEmpty(t)
		})
	}
}

// TestSymlinkChainCannotClimbOut: the rule "a relative target that climbs
// above the image root is refused" must hold when the target goes through
// other symlinks of the image, not only lexically. Here d/l1 -> "." makes
// d/l1/l1 the directory d, so "l1/l1/../../outside" from d is the directory
// next to the root on the host, while the lexical count never drops below zero.
func TestSymlinkChainCannotClimbOut(t *testing.T) {
	f := newFixture(t, tarx.DefaultLimits, false)
	f.mustAdd(t, dir("d", 0o755), symlink("d/l1", "."))
	err := f.add(symlink("d/l2", "l1/l1/../../outside"))
	if err == nil {
		// The host resolves it: d/l1 is d, so this is root/../outside.
		fi, serr := os.Stat(filepath.Join(f.root, "d/l2"))
		t.Errorf("symlink d/l2 -> l1/l1/../../outside accepted; on the host it resolves to %s (a directory: %v), outside the root",
			f.outside, serr == nil && fi.IsDir())
	}
}

func TestLimits(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		f := newFixture(t, tarx.Limits{MaxEntries: 3}, false) // the root counts as one
		f.mustAdd(t, file("a", 0o644, "1"), file("b", 0o644, "2"))
		if f.ex.Count() != 3 {
			t.Errorf("Count = %d, want 3", f.ex.Count())
		}
		if err := f.add(file("c", 0o644, "3")); !errors.Is(err, tarx.ErrUnsafe) || !strings.Contains(err.Error(), "more than 3 entries") {
			t.Errorf("fourth entry: %v, want a 'more than 3 entries' error", err)
		}
		if _, err := os.Lstat(filepath.Join(f.root, "c")); !os.IsNotExist(err) {
			t.Errorf("refused entry c exists (%v)", err)
		}
	})
	t.Run("name length", func(t *testing.T) {
		f := newFixture(t, tarx.Limits{MaxNameLen: 10}, false)
		f.mustAdd(t, file("0123456789", 0o644, "ok"))
		if err := f.add(file("0123456789a", 0o644, "x")); !errors.Is(err, tarx.ErrUnsafe) {
			t.Errorf("11-byte name: %v, want ErrUnsafe", err)
		}
		if err := f.add(symlink("l", "0123456789a")); !errors.Is(err, tarx.ErrUnsafe) {
			t.Errorf("11-byte link target: %v, want ErrUnsafe", err)
		}
	})
	t.Run("xattr length", func(t *testing.T) {
		f := newFixture(t, tarx.Limits{MaxXattrLen: 4}, false)
		e := file("f", 0o644, "x")
		e.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "12345"}
		if err := f.add(e); !errors.Is(err, tarx.ErrUnsafe) {
			t.Errorf("5-byte xattr with a 4-byte limit: %v, want ErrUnsafe", err)
		}
	})
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestReadErrorIsReported(t *testing.T) {
	f := newFixture(t, tarx.DefaultLimits, false)
	hdr := &tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 100}
	err := f.ex.Add("f", hdr, &failingReader{n: 10})
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `"f"`) {
		t.Errorf("Add with a failing reader: %v, want an error naming f and wrapping the read error", err)
	}
	if errors.Is(err, tarx.ErrUnsafe) {
		t.Errorf("a read error is classed as ErrUnsafe: %v", err)
	}
}

func TestNewNeedsDirectory(t *testing.T) {
	if _, err := tarx.New(filepath.Join(t.TempDir(), "missing"), tarx.DefaultLimits, false); err == nil {
		t.Error("New on a missing directory succeeded")
	}
}

// TestSymlinkEscapeThroughLaterSymlink: when d/s -> ../l/.. is added, l
// does not exist yet and the target stays inside the root; l -> . comes
// later and makes d/s the root's parent. Add cannot see that, so Finish must
// refuse the tree. The same chain without the final ".." stays inside and
// is accepted, so the refusal is for the escape, not for the late link.
func TestSymlinkEscapeThroughLaterSymlink(t *testing.T) {
	f := newFixture(t, tarx.DefaultLimits, false)
	f.mustAdd(t, dir("d", 0o755), symlink("d/s", "../l/.."), symlink("l", "."))
	sum, err := f.ex.Finish()
	if err == nil {
		// On the host, d/s now resolves to the root's parent.
		fi, serr := os.Stat(filepath.Join(f.root, "d/s/outside"))
		t.Fatalf("Finish accepted d/s -> ../l/.. with l -> . (digest %s); d/s/outside on the host is the directory next to the root: %v",
			sum, serr == nil && fi.IsDir())
	}
	if !errors.Is(err, tarx.ErrUnsafe) || !strings.Contains(err.Error(), `"d/s"`) {
		t.Errorf("Finish: %v, want ErrUnsafe naming d/s", err)
	}
	if sum != "" {
		t.Errorf("Finish refused the tree but returned digest %q", sum)
	}

	ok := newFixture(t, tarx.DefaultLimits, false)
	ok.mustAdd(t, dir("d", 0o755), symlink("d/s", "../l/x"), symlink("l", "."))
	if _, err := ok.ex.Finish(); err != nil {
		t.Errorf("Finish refused d/s -> ../l/x with l -> . (inside the root): %v", err)
	}
}
