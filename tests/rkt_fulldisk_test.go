package tests

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A --dir whose file system fills up: a prepare that cannot write the pod
// directory leaves nothing behind, and a pod whose app fills the file
// system still records its exit status.

// mountTmpfs mounts a tmpfs of size bytes on dir (which must exist) and
// unmounts it when the test ends, after running collect (when not nil):
// the context's own collection of its pods (their gc, which removes their
// cgroups) must see the pods on the tmpfs, and cleanups run last
// registered first.
func mountTmpfs(t *testing.T, dir string, size int64, collect func()) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0755"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if collect != nil {
		t.Cleanup(collect)
	}
}

// fillUp writes a file in dir until the file system is full.
func fillUp(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// Smaller writes, until not even a byte fits.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}

// TestFullDiskPrepareLeavesNothing: with the images fetched and the data
// directory's file system full, rkt prepare and rkt run fail with 254
// and a message naming the lack of space, and leave no pod.
func TestFullDiskPrepareLeavesNothing(t *testing.T) {
	e := newPodEnv(t)
	mountTmpfs(t, e.Dir, 32<<20, nil) // the stub stage1 makes no cgroups
	// rkt prepare once to fetch both images, then remove that pod.
	uuid := e.prepare()
	e.MustRun("rm", uuid)
	fillUp(t, e.Dir)
	for _, verb := range []string{"prepare", "run"} {
		r := e.Run(e.podArgs(verb, nil)...)
		if r.Exit != 254 || !strings.Contains(r.Stderr, "no space left on device") || strings.Contains(r.Stderr, "panic") {
			t.Errorf("rkt %s on a full disk: want exit 254 saying \"no space left on device\", got %d\nstderr: %s", verb, r.Exit, r.Stderr)
		}
		e.requireNoPods()
	}
}

// TestFullDiskExitStatusRecorded: an app that fills the data directory's
// file system (through its root, whose upper layer is in the pod
// directory) still gets its exit status recorded and shown by rkt status.
func TestFullDiskExitStatusRecorded(t *testing.T) {
	e := newRealEnv(t)
	mountTmpfs(t, e.Dir, 160<<20, e.collect)
	uuid, r := e.runUUID(append([]string{e.img, "--name=filler"},
		shExec(`dd if=/dev/zero of=/fill bs=65536 2>/dev/null; dd if=/dev/zero of=/fill2 bs=1 2>/dev/null; exit 3`)...)...)
	if r.Exit != 3 {
		t.Fatalf("want exit 3, got %s", describeResult([]string{"run", "filler"}, r))
	}
	var st unix.Statfs_t
	if err := unix.Statfs(e.Dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Bavail != 0 {
		t.Fatalf("the app did not fill the file system: %d blocks free", st.Bavail)
	}
	if got := e.podStatus(uuid)["app-filler"]; got != "3" {
		t.Errorf("rkt status of a pod that filled its --dir: app-filler=%q, want 3", got)
	}
}
