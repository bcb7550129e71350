package tests

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/cgroup"
)

// Functional tests of rkt under systemd, without systemd: readiness
// through NOTIFY_SOCKET, and a pod started inside a unit's cgroup. Helpers
// are in rkt_pod_real_test.go.

// notifySocket stands in for systemd's NOTIFY_SOCKET: a unixgram socket
// that records each datagram's sender (SO_PASSCRED) and the kernel's
// arrival time (SO_TIMESTAMPNS).
type notifySocket struct {
	path string
	conn *net.UnixConn
}

// notifyMsg is one datagram received on a notifySocket.
type notifyMsg struct {
	data string
	pid  int       // the sender's pid
	at   time.Time // when the kernel queued it
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatalf("notify socket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1); serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
	})
	if err != nil || serr != nil {
		t.Fatalf("notify socket options: %v %v", err, serr)
	}
	return &notifySocket{path: p, conn: conn}
}

// recv waits up to d for the next datagram.
func (s *notifySocket) recv(d time.Duration) (notifyMsg, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, 512)
	s.conn.SetReadDeadline(time.Now().Add(d))
	n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return notifyMsg{}, err
	}
	m := notifyMsg{data: string(buf[:n])}
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return m, fmt.Errorf("parse the datagram's control messages: %w", err)
	}
	for _, c := range cmsgs {
		switch {
		case c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_CREDENTIALS:
			if cred, err := unix.ParseUnixCredentials(&c); err == nil {
				m.pid = int(cred.Pid)
			}
		case c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SO_TIMESTAMPNS && len(c.Data) >= 16:
			// struct timespec: two native longs (64-bit Linux).
			m.at = time.Unix(int64(binary.NativeEndian.Uint64(c.Data)), int64(binary.NativeEndian.Uint64(c.Data[8:])))
		}
	}
	if m.pid == 0 || m.at.IsZero() {
		return m, errors.New("the datagram came without sender credentials or timestamp")
	}
	return m, nil
}

// mtime is a file's modification time; the test fails if it is missing.
func mtime(t testing.TB, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return fi.ModTime()
}

// TestSystemdNotifyReady: with NOTIFY_SOCKET set, rkt run (the unit's main
// PID) sends READY=1 once the app was started, while it runs; the app does
// not see the host's socket.
func TestSystemdNotifyReady(t *testing.T) {
	e := newRealEnv(t)
	ns := newNotifySocket(t)
	bp := e.start([]string{"NOTIFY_SOCKET=" + ns.path}, e.img, "--exec=/inspect", "--", "--print-env=NOTIFY_SOCKET", "--sleep=2s")
	m, err := ns.recv(15 * time.Second)
	if err != nil {
		t.Fatalf("no readiness notification: %v\nstderr: %s", err, bp.errb.String())
	}
	if m.data != "READY=1" || m.pid != bp.cmd.Process.Pid {
		t.Errorf("notification %q from pid %d, want READY=1 from rkt run (pid %d)", m.data, m.pid, bp.cmd.Process.Pid)
	}
	status := filepath.Join(e.podDir(bp.UUID), "stage1", "rootfs", "rkt", "status", realApp)
	started := mtime(t, status+"-started")
	if m.at.Before(started) {
		t.Errorf("READY=1 arrived at %s, before the app started (%s)", m.at.Format(time.StampMicro), started.Format(time.StampMicro))
	}
	if code := bp.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("rkt run: exit %d\nstderr: %s", code, bp.errb.String())
	}
	if exited := mtime(t, status); !m.at.Before(exited) {
		t.Errorf("READY=1 arrived at %s, after the app exited (%s)", m.at.Format(time.StampMicro), exited.Format(time.StampMicro))
	}
	if !strings.Contains(bp.out.String(), "NOTIFY_SOCKET is unset") {
		t.Errorf("the app sees NOTIFY_SOCKET: %q", bp.out.String())
	}
	if m, err := ns.recv(100 * time.Millisecond); err == nil {
		t.Errorf("a second notification %q from pid %d", m.data, m.pid)
	}
}

// TestSystemdNotifyFromApp: an image that supports systemd notify
// (annotation appc.io/executor/supports-systemd-notify=true) makes the pod
// ready only when its app sends READY=1 itself, half a second after it
// started; rkt run forwards it once.
func TestSystemdNotifyFromApp(t *testing.T) {
	e := newRealEnv(t)
	a := e.inspectACI("rkt.dev/notifier", "/bin/sh", "-c", "/inspect --sleep=0.5s && exec /inspect --sd-notify=READY=1 --sleep=2s")
	a.Image.Annotations = map[string]string{"appc.io/executor/supports-systemd-notify": "true"}
	img := e.writeImage("notifier.aci", a)
	ns := newNotifySocket(t)
	bp := e.start([]string{"NOTIFY_SOCKET=" + ns.path}, img)
	m, err := ns.recv(15 * time.Second)
	if err != nil {
		t.Fatalf("no readiness notification: %v\nstderr: %s", err, bp.errb.String())
	}
	if m.data != "READY=1" || m.pid != bp.cmd.Process.Pid {
		t.Errorf("notification %q from pid %d, want READY=1 from rkt run (pid %d)", m.data, m.pid, bp.cmd.Process.Pid)
	}
	started := mtime(t, filepath.Join(e.podDir(bp.UUID), "stage1", "rootfs", "rkt", "status", "notifier-started"))
	if d := m.at.Sub(started); d < 250*time.Millisecond {
		t.Errorf("READY=1 arrived %s after the app started, before the app sent it (0.5s)", d)
	}
	if code := bp.wait(t, 15*time.Second); code != 0 || !strings.Contains(bp.out.String(), "sd-notify: READY=1") {
		t.Errorf("rkt run: exit %d, want 0 with the app's notification\nstdout: %s\nstderr: %s", code, bp.out.String(), bp.errb.String())
	}
	if m, err := ns.recv(100 * time.Millisecond); err == nil {
		t.Errorf("a second notification %q from pid %d", m.data, m.pid)
	}
}

// unitCgroups creates a cgroup named unit (e.g. "x.service") below the
// test process's cgroup in every mounted hierarchy, as systemd does for a
// service, and returns the directories and the unit's path per
// hierarchy line of /proc/self/cgroup ("ID:CONTROLLERS" → path).
func unitCgroups(t *testing.T, unit string) (dirs []string, paths map[string]string) {
	t.Helper()
	type mnt struct {
		point, root string
		opts        map[string]bool
		v2          bool
	}
	var mounts []mnt
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(mi)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		m := mnt{point: f[4], root: f[3], v2: g[0] == "cgroup2", opts: map[string]bool{}}
		for _, o := range strings.Split(g[2], ",") {
			m.opts[o] = true
		}
		mounts = append(mounts, m)
	}
	mi.Close()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	paths = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, m := range mounts {
			match := m.v2 && parts[1] == ""
			if !m.v2 && parts[1] != "" {
				match = true
				for _, c := range strings.Split(parts[1], ",") {
					match = match && m.opts[c]
				}
			}
			if !match {
				continue
			}
			rel, ok := strings.CutPrefix(parts[2], strings.TrimSuffix(m.root, "/"))
			if !ok {
				break
			}
			dir := filepath.Join(m.point, rel, unit)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatalf("create the unit's cgroup: %v", err)
			}
			dirs = append(dirs, dir)
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f)); err == nil {
					if err := os.WriteFile(filepath.Join(dir, f), parent, 0o644); err != nil {
						t.Fatalf("initialise %s: %v", dir, err)
					}
				}
			}
			paths[parts[0]+":"+parts[1]] = filepath.Join(parts[2], unit)
			break
		}
	}
	if len(dirs) == 0 {
		t.Skip("no cgroup hierarchy is mounted")
	}
	return dirs, paths
}

// ppid returns the parent of pid (0 if it is gone).
func ppid(t testing.TB, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// TestSystemdUnitCgroup runs rkt run from a shell moved into a cgroup
// standing in for a systemd service (rkt-test-<n>.service in every
// hierarchy): the pod stays in the unit (no rkt-<uuid> cgroup), the
// pod's process 1 is a child of the PID the shell exec'd into rkt run (the
// unit's main PID is the pod's outer process), and the app's cgroups are
// below the unit.
func TestSystemdUnitCgroup(t *testing.T) {
	e := newRealEnv(t)
	unit := fmt.Sprintf("rkt-test-%d.service", rand.Uint32())
	dirs, paths := unitCgroups(t, unit)
	// Registered after the rkt context's cleanups and before the pod's:
	// runs once the pod is killed, then collects it and removes the unit.
	t.Cleanup(func() {
		e.killLeftovers()
		e.Run("gc", "--grace-period=0s")
		removeCgroupTrees(t, dirs)
	})
	f := filepath.Join(t.TempDir(), "uuid")
	script := `for d in $RKT_TEST_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 99; done; exec "$@"`
	args := append(e.GlobalArgs(), insecureImage, "run", hostNet, "--uuid-file-save="+f, e.img, "--exec=/inspect", "--", "--read-file=/proc/self/cgroup", "--sleep=60s")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := execCommand(ctx, "/bin/sh", append([]string{"-c", script, "sh", e.Bin}, args...)...)
	cmd.Env = append(os.Environ(), "RKT_TEST_CGROUPS="+strings.Join(dirs, " "))
	bp := e.startCmd(cmd, cancel, f)
	e.waitReady(bp)

	// status shows the pod's process 1 (docs/stage1-abi.md, pid): the
	// supervisor, a child of the process the unit started, which is rkt
	// run exec'd into stage1.
	st := e.podStatus(bp.UUID)
	if pid, err := strconv.Atoi(st["pid"]); err != nil || ppid(t, pid) != cmd.Process.Pid {
		t.Errorf("status pid=%s, want the pod's process 1, a child of the pid the unit started (%d)", st["pid"], cmd.Process.Pid)
	}
	checkBelow := func(who string, pid int, below map[string]string) {
		t.Helper()
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			want, ok := below[parts[0]+":"+parts[1]]
			if len(parts) == 3 && !cgroup.UsedByPods(parts[1]) {
				// Pods get no cgroups in this hierarchy: everything of the
				// pod is in the unit's own.
				want, ok = paths[parts[0]+":"+parts[1]]
			}
			if !ok || len(parts) != 3 || !(parts[2] == want || strings.HasPrefix(parts[2], want+"/")) {
				t.Errorf("%s (pid %d) is in cgroup %q, want in %q", who, pid, line, want)
			}
		}
	}
	checkBelow("rkt run", cmd.Process.Pid, paths)
	appPaths := map[string]string{}
	for k, p := range paths {
		appPaths[k] = p + "/app-" + realApp
	}
	checkBelow("the app", e.podPid(bp.UUID, "stage1/rootfs/rkt/app-pid/"+realApp), appPaths)
	if left := podCgroupsLeft([]string{bp.UUID}); len(left) > 0 {
		t.Errorf("a pod in a unit made its own cgroups: %v", left)
	}

	e.MustRun("stop", bp.UUID)
	if code := bp.wait(t, 15*time.Second); code != 143 {
		t.Errorf("rkt run: exit %d, want 143\nstderr: %s", code, bp.errb.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(bp.out.String()), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && !strings.HasPrefix(line, "inspect:") && !cgroup.UsedByPods(parts[1]) {
			continue // the unit's own cgroup in a hierarchy pods get none in
		}
		if strings.Contains(line, ":") && !strings.HasPrefix(line, "inspect:") && !strings.HasSuffix(line, "/"+unit+"/app-"+realApp) {
			t.Errorf("the app saw its cgroup as %q, want below /%s/app-%s", line, unit, realApp)
		}
	}
	e.MustRun("gc", "--grace-period=0s")
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Errorf("the unit's cgroup %s: %v", d, err)
			continue
		}
		for _, ent := range ents {
			if ent.IsDir() {
				t.Errorf("gc left cgroup %s in the unit", filepath.Join(d, ent.Name()))
			}
		}
	}
}

// execCommand is exec.CommandContext in its own process group, killed
// with the group when ctx ends (as testutils.RktCtx.Cmd does for rkt).
func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
