package stage2

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/testutil"
)

func TestMountFlags(t *testing.T) {
	got := mountFlags(unix.ST_RDONLY | unix.ST_NOEXEC | unix.ST_RELATIME)
	if want := uintptr(unix.MS_RDONLY | unix.MS_NOEXEC | unix.MS_RELATIME); got != want {
		t.Errorf("mountFlags = %#x, want %#x", got, want)
	}
	if got := mountFlags(0); got != 0 {
		t.Errorf("mountFlags(0) = %#x", got)
	}
}

// TestRestrictBind (root): a recursive bind gets nodev and nosuid on its
// top mount and on the mount below it, which keeps its noexec; both with
// mount_setattr and with the remounts of older kernels.
func TestRestrictBind(t *testing.T) {
	testutil.RequireRoot(t)
	for _, way := range []string{"mount_setattr", "remount"} {
		t.Run(way, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			sub := filepath.Join(src, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", sub, "tmpfs", unix.MS_NOEXEC, "size=16k"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
			if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
			var err error
			if way == "remount" {
				err = restrictByRemount(dst, unix.MS_NODEV|unix.MS_NOSUID, true)
			} else {
				err = restrictBind(dst, false, true)
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]int64{
				dst:                       unix.ST_NODEV | unix.ST_NOSUID,
				filepath.Join(dst, "sub"): unix.ST_NODEV | unix.ST_NOSUID | unix.ST_NOEXEC,
			} {
				var st unix.Statfs_t
				if err := unix.Statfs(p, &st); err != nil {
					t.Fatal(err)
				}
				if st.Flags&want != want || st.Flags&unix.ST_RDONLY != 0 {
					t.Errorf("%s: flags %#x, want %#x and not read-only", p, st.Flags, want)
				}
			}
			var st unix.Statfs_t
			if err := unix.Statfs(sub, &st); err == nil && st.Flags&unix.ST_NODEV != 0 {
				t.Errorf("the source's own mount %s became nodev", sub)
			}
		})
	}
}
