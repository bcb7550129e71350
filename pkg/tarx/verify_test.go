package tarx_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/tarx"

	"github.com/rkt/rkt/pkg/testutil"
)

// TestDigestDetectsChanges: every kind of change to an extracted tree
// changes Digest, and undoing it restores the digest Finish returned.
func TestDigestDetectsChanges(t *testing.T) {
	f := newFixture(t, tarx.DefaultLimits, false)
	f.mustAdd(t, dir("d", 0o755), file("d/f", 0o644, "content"), symlink("d/l", "f"),
		file("d/g", 0o600, "other"))
	want, err := f.ex.Finish()
	if err != nil {
		t.Fatal(err)
	}
	p := func(rel string) string { return filepath.Join(f.root, rel) }
	changes := []struct {
		desc         string
		change, undo func() error
	}{
		{"content, same size",
			func() error { return os.WriteFile(p("d/f"), []byte("CONTENT"), 0) },
			func() error { return os.WriteFile(p("d/f"), []byte("content"), 0) }},
		{"mode",
			func() error { return os.Chmod(p("d/f"), 0o755) },
			func() error { return os.Chmod(p("d/f"), 0o644) }},
		{"setuid bit",
			func() error { return unix.Chmod(p("d/g"), 0o4600) },
			func() error { return os.Chmod(p("d/g"), 0o600) }},
		{"directory mode",
			func() error { return os.Chmod(p("d"), 0o700) },
			func() error { return os.Chmod(p("d"), 0o755) }},
		{"symlink target",
			func() error { os.Remove(p("d/l")); return os.Symlink("g", p("d/l")) },
			func() error { os.Remove(p("d/l")); return os.Symlink("f", p("d/l")) }},
		{"xattr",
			func() error { return unix.Setxattr(p("d/f"), "user.added", []byte("1"), 0) },
			func() error { return unix.Removexattr(p("d/f"), "user.added") }},
		{"new file",
			func() error { return os.WriteFile(p("d/new"), nil, 0o644) },
			func() error { return os.Remove(p("d/new")) }},
		{"removed file",
			func() error { return os.Rename(p("d/g"), filepath.Join(f.outside, "g")) },
			func() error { return os.Rename(filepath.Join(f.outside, "g"), p("d/g")) }},
	}
	restoreTimes := func() {
		for _, rel := range []string{"d/f", "d/g", "d"} {
			os.Chtimes(p(rel), t2001, t2001)
		}
		ts := unix.NsecToTimespec(t2001.UnixNano())
		unix.UtimesNanoAt(unix.AT_FDCWD, p("d/l"), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	for _, c := range changes {
		if err := c.change(); err != nil {
			t.Fatalf("%s: change: %v", c.desc, err)
		}
		restoreTimes()
		if got, err := tarx.Digest(f.root); err != nil || got == want {
			t.Errorf("%s: Digest = %s, %v; want it to differ from %s", c.desc, got, err, want)
		}
		if err := c.undo(); err != nil {
			t.Fatalf("%s: undo: %v", c.desc, err)
		}
		restoreTimes()
		if got, err := tarx.Digest(f.root); err != nil || got != want {
			t.Fatalf("%s: after undoing, Digest = %s, %v; want %s", c.desc, got, err, want)
		}
	}
	// The mtime alone.
	os.Chtimes(p("d/f"), t2001, t2001.Add(time.Second))
	if got, _ := tarx.Digest(f.root); got == want {
		t.Error("a changed mtime does not change the digest")
	}
	if os.Geteuid() == 0 {
		restoreTimes()
		os.Lchown(p("d/f"), 1, 1)
		if got, _ := tarx.Digest(f.root); got == want {
			t.Error("a changed owner does not change the digest")
		}
	}
}

func TestDigestRefusesDevices(t *testing.T) {
	testutil.RequireRoot(t) // mknod
	d := t.TempDir()
	if err := unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skip("mknod:", err)
	}
	if _, err := tarx.Digest(d); err == nil {
		t.Error("Digest accepted a device node in a tree")
	}
}
