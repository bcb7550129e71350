package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/tests/testutils"
)

// Functional tests of the ways out of a pod that are closed by default:
// device nodes in volumes, devices outside the pod's /dev, descriptors
// inherited from rkt's caller and io_uring. Helpers are in
// rkt_pod_real_test.go.

// mknodHost makes a device node on the host (for the app to find in a
// volume); the tests never write to one.
func mknodHost(t *testing.T, path string, mode uint32, major, minor uint32) {
	t.Helper()
	if err := unix.Mknod(path, mode|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatalf("mknod %s: %v", path, err)
	}
}

// TestDevicesInVolumes: a host and an empty volume are mounted nodev and
// nosuid, recursively (a mount below a host volume's source too): device
// nodes there, made by the host or by the app, cannot be opened; the
// devices cgroup denies creating any device but the pod's /dev ones, in
// a volume or in the app's root; /dev/null and the others still work.
func TestDevicesInVolumes(t *testing.T) {
	e := newRealEnv(t)
	host := t.TempDir()
	mknodHost(t, filepath.Join(host, "null"), unix.S_IFCHR, 1, 3)
	mknodHost(t, filepath.Join(host, "loop"), unix.S_IFBLK, 7, 0) // only ever opened read-only
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	mknodHost(t, filepath.Join(sub, "null"), unix.S_IFCHR, 1, 3)

	args := []string{"--volume=data,kind=host,source=" + host, "--volume=scratch,kind=empty",
		e.img, "--mount=volume=data,target=/data", "--mount=volume=scratch,target=/scratch",
		"--exec=/inspect", "--",
		"--mknod=/data/blk,b,7,0", "--mknod=/data/null2,c,1,3", "--mknod=/scratch/null2,c,1,3",
		"--mknod=/scratch/blk,b,7,0", "--mknod=/tmp/blk,b,7,0", "--mknod=/tmp/mem,c,1,1", "--mknod=/tmp/null2,c,1,3",
		"--open-file=/data/null,rw", "--open-file=/data/loop,r", "--open-file=/data/sub/null,rw",
		"--open-file=/data/null2,rw", "--open-file=/scratch/null2,rw", "--open-file=/tmp/null2,rw",
		"--open-file=/dev/null,rw", "--open-file=/dev/zero,r", "--open-file=/dev/full,w",
		"--open-file=/dev/random,r", "--open-file=/dev/urandom,r", "--open-file=/dev/ptmx,rw",
		"--print-mounts"}
	out := e.runOK(args...)
	for key, want := range map[string]string{
		// The devices cgroup: only the pod's /dev devices can be made.
		"mknod /data/blk": "EPERM", "mknod /scratch/blk": "EPERM", "mknod /tmp/blk": "EPERM", "mknod /tmp/mem": "EPERM",
		"mknod /data/null2": "ok", "mknod /scratch/null2": "ok", "mknod /tmp/null2": "ok",
		// nodev: no node in a volume (or the app's root) opens.
		"open /data/null": "EACCES", "open /data/loop": "EACCES", "open /data/sub/null": "EACCES",
		"open /data/null2": "EACCES", "open /scratch/null2": "EACCES", "open /tmp/null2": "EACCES",
		// The pod's /dev works.
		"open /dev/null": "ok", "open /dev/zero": "ok", "open /dev/full": "ok",
		"open /dev/random": "ok", "open /dev/urandom": "ok", "open /dev/ptmx": "ok",
	} {
		wantValue(t, out, key, want)
	}
	for _, mp := range []string{"/data", "/data/sub", "/scratch"} {
		opts := mountOptions(out, mp)
		if !strings.Contains(","+opts+",", ",nodev,") || !strings.Contains(","+opts+",", ",nosuid,") {
			t.Errorf("volume mount %s has options %q, want nodev and nosuid", mp, opts)
		}
	}
	if _, err := os.Lstat(filepath.Join(host, "blk")); err == nil {
		t.Errorf("the app made a block device node in the host volume")
	}
}

// mountOptions returns the per-mount options of the mount at mp in a
// mountinfo listing ("" if there is none).
func mountOptions(mountinfo, mp string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == mp {
			return f[5]
		}
	}
	return ""
}

// TestInheritedFdsDoNotReachApps: a descriptor rkt's caller leaves open
// without close-on-exec (here fd 9, a directory, like a shell's 9</tmp)
// does not reach the app, in the default flavor nor in fly, nor a
// command run by rkt enter; they have only stdio and their own runtime's
// descriptors.
func TestInheritedFdsDoNotReachApps(t *testing.T) {
	e := newRealEnv(t)
	dir := t.TempDir()
	for _, flavor := range []string{"default", "fly"} {
		t.Run(flavor, func(t *testing.T) {
			args := []string{insecureImage, "run", hostNet}
			if flavor == "fly" {
				requireStage1Beside(t, e.Bin, "stage1-fly.aci")
				args = append(args, "--stage1-from-dir=stage1-fly.aci")
			}
			args = append(args, e.img, "--exec=/inspect", "--", "--print-fds")
			checkNoInheritedFds(t, runWithFd9(t, e, dir, args), dir)
		})
	}
	t.Run("enter", func(t *testing.T) {
		bp := e.startReady(e.img, "--exec=/inspect", "--", "--sleep=60s")
		checkNoInheritedFds(t, runWithFd9(t, e, dir, []string{"enter", bp.UUID, "/inspect", "--print-fds"}), dir)
	})
}

// runWithFd9 runs rkt with args and the directory dir open as fd 9,
// inheritable, and returns its standard output.
func runWithFd9(t *testing.T, e *realEnv, dir string, args []string) string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testutils.RunTimeout)
	defer cancel()
	cmd := e.Cmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// fds 3-8 closed, 9 the directory (os/exec clears its close-on-exec).
	cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, nil, nil, f}
	if err := cmd.Run(); err != nil {
		t.Fatalf("rkt %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// checkNoInheritedFds fails the test if inspect's --print-fds output
// shows a descriptor above 2 that is not its Go runtime's own (an
// anon_inode: eventpoll, eventfd), or one on dir.
func checkNoInheritedFds(t *testing.T, out, dir string) {
	t.Helper()
	if !strings.Contains(out, "fd: 0 ") {
		t.Fatalf("no descriptor listing in the output:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		v, ok := strings.CutPrefix(line, "fd: ")
		if !ok {
			continue
		}
		num, target, _ := strings.Cut(v, " ")
		if num == "0" || num == "1" || num == "2" {
			continue
		}
		if num == "9" || strings.Contains(target, dir) || !strings.HasPrefix(target, "anon_inode:") {
			t.Errorf("the app has descriptor %s (%s), not opened by itself:\n%s", num, target, out)
		}
	}
}

// TestIOURingBlocked: io_uring_setup fails with EPERM under the default
// seccomp filter (it works on this host outside the pod, else the test
// would prove nothing), and works with an allow list that names it or
// with --insecure-options=seccomp.
func TestIOURingBlocked(t *testing.T) {
	e := newRealEnv(t)
	var params [120]byte
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		t.Skipf("io_uring_setup fails on this host itself (%v): nothing to check", errno)
	}
	unix.Close(int(fd))
	out := e.runOK(e.img, "--exec=/inspect", "--", "--try-io-uring")
	wantValue(t, out, "io_uring_setup", "EPERM")
	r := e.Run("--insecure-options=image,seccomp", "run", hostNet, e.img, "--exec=/inspect", "--", "--try-io-uring")
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult([]string{"run", "--insecure-options=image,seccomp"}, r))
	}
	wantValue(t, r.Stdout, "io_uring_setup", "ok")
	out = e.runOK(e.img, "--seccomp=mode=retain,@rkt/default-whitelist,io_uring_setup,io_uring_enter,io_uring_register",
		"--exec=/inspect", "--", "--try-io-uring")
	wantValue(t, out, "io_uring_setup", "ok")
}
