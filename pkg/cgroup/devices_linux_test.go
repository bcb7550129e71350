package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/testutil"
)

// deviceHelperEnv makes the test binary the helper of
// TestLimitDevicesReal: it joins the cgroup directory the variable names,
// then tries the device operations and prints "NAME: ok|ERRNO" lines.
const deviceHelperEnv = "RKT_TEST_DEVICE_HELPER_CGROUP"

func TestMain(m *testing.M) {
	if dir := os.Getenv(deviceHelperEnv); dir != "" {
		os.Exit(deviceHelper(dir, os.Getenv("RKT_TEST_DEVICE_HELPER_DIR")))
	}
	os.Exit(m.Run())
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// deviceHelper runs in the cgroup dir; scratch holds the nodes the test
// made (a loop device node it only opens read-only, never reads).
func deviceHelper(dir, scratch string) int {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("0"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "join", dir, err)
		return 2
	}
	open := func(p string, flags int) error {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	fmt.Println("open null:", errName(open("/dev/null", unix.O_RDWR)))
	fmt.Println("open zero:", errName(open("/dev/zero", unix.O_RDONLY)))
	fmt.Println("open loop node:", errName(open(filepath.Join(scratch, "loop"), unix.O_RDONLY)))
	fmt.Println("mknod block:", errName(unix.Mknod(filepath.Join(scratch, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0)))))
	fmt.Println("mknod mem:", errName(unix.Mknod(filepath.Join(scratch, "mem"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 1)))))
	fmt.Println("mknod null:", errName(unix.Mknod(filepath.Join(scratch, "null2"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))))
	return 0
}

// TestLimitDevicesReal (root) applies the default device list on this host's
// cgroupfs, once through the v1 devices hierarchy and once through the
// cgroup v2 device program (which the kernel runs on a hybrid host too),
// and checks what a process in the app's cgroup can do.
func TestLimitDevicesReal(t *testing.T) {
	testutil.RequireRoot(t)
	all, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 []Hierarchy
	for _, h := range all {
		if h.Unified {
			v2 = append(v2, h)
		} else if h.Has(Devices) {
			v1 = append(v1, h)
		}
	}
	for _, c := range []struct {
		name string
		hs   []Hierarchy
	}{{"v1", v1}, {"v2", v2}} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.hs) == 0 {
				t.Skipf("no %s hierarchy for devices here", c.name)
			}
			checkLimitDevices(t, c.hs)
		})
	}
}

func checkLimitDevices(t *testing.T, hs []Hierarchy) {
	p := NewPod(hs, "devtest-"+time.Now().Format("150405.000000"), false)
	t.Cleanup(func() {
		if err := Remove(context.Background(), p.Created()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := p.Create(false); err != nil {
		t.Fatal(err)
	}
	dirs, err := p.AddApp("t", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LimitDevices("t", DefaultDevices); err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	if err := unix.Mknod(filepath.Join(scratch, "loop"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), deviceHelperEnv+"="+dirs[0], "RKT_TEST_DEVICE_HELPER_DIR="+scratch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{
		"open null: ok", "open zero: ok", "open loop node: EPERM",
		"mknod block: EPERM", "mknod mem: EPERM", "mknod null: ok",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("want %q in the helper's output:\n%s", want, out)
		}
	}
}

// TestLimitDevicesUnderRestrictedParentV1 (root): below a devices cgroup
// that allows only /dev/null, the default list leaves out what the
// parent denies instead of failing, and the app gets only /dev/null.
func TestLimitDevicesUnderRestrictedParentV1(t *testing.T) {
	testutil.RequireRoot(t)
	all, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	var h *Hierarchy
	for i := range all {
		if !all[i].Unified && all[i].Has(Devices) {
			h = &all[i]
		}
	}
	if h == nil {
		t.Skip("no v1 devices hierarchy here")
	}
	parentPath := h.Path + "/devtest-parent-" + time.Now().Format("150405.000000")
	parent := h.Dir(parentPath)
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(parent) })
	for _, w := range [][2]string{{"devices.deny", "a"}, {"devices.allow", "c 1:3 rwm"}} {
		if err := os.WriteFile(filepath.Join(parent, w[0]), []byte(w[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hs := []Hierarchy{*h}
	hs[0].Path = parentPath
	p := NewPod(hs, "devtest", false)
	t.Cleanup(func() {
		if err := Remove(context.Background(), p.Created()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := p.Create(false); err != nil {
		t.Fatal(err)
	}
	dirs, err := p.AddApp("t", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LimitDevices("t", DefaultDevices); err != nil {
		t.Fatalf("below a restricted parent: %v", err)
	}
	list, err := os.ReadFile(filepath.Join(dirs[0], "devices.list"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(list)); got != "c 1:3 rwm" {
		t.Errorf("devices.list = %q, want only c 1:3 rwm", got)
	}
}
