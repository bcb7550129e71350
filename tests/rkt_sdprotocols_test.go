package tests

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Functional tests of systemd's protocols through rkt run, driven by
// systemd's own tools where there are some: socket activation (LISTEN_FDS,
// with systemd-socket-activate), the notify relay (NOTIFY_SOCKET, with a
// socket of the test standing in for systemd's) and the stop timeout.
// Helpers are in rkt_pod_real_test.go and rkt_systemd_test.go.

// freeLoopbackPort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// socketActivated runs `systemd-socket-activate -l ADDR --fdname=web rkt
// run --net=host ARGS...` (ADDR on 127.0.0.1), connects to ADDR and
// returns what the pod answered, with rkt's pid, stdout and exit code.
func (e *realEnv) socketActivated(args ...string) (answer string, pid int, out string, code int) {
	e.t.Helper()
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		e.t.Fatalf("systemd-socket-activate (package systemd) is needed: %v", err)
	}
	addr := "127.0.0.1:" + freeLoopbackPort(e.t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rkt := e.Cmd(ctx, append([]string{insecureImage, "run", hostNet}, args...)...)
	cmd := exec.CommandContext(ctx, sa, append([]string{"-l", addr, "--fdname=web", rkt.Path}, rkt.Args[1:]...)...)
	cmd.Env = rkt.Env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start systemd-socket-activate: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() { cancel(); <-done }()
	var c net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("connect to %s: %v\nstderr: %s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil {
		e.t.Errorf("no answer on %s: %v\nstderr: %s", addr, err, stderr.String())
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		e.t.Fatalf("rkt run did not exit\nstderr: %s", stderr.String())
	}
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	if code != 0 {
		e.t.Logf("stderr: %s", stderr.String())
	}
	return strings.TrimSpace(line), cmd.Process.Pid, stdout.String(), code
}

// TestSocketActivationOneApp: the app of a one-app pod started by
// systemd-socket-activate accepts on fd 3 and answers on the address,
// with LISTEN_PID its own pid in the pod, LISTEN_FDS=1 and the socket's
// name; it has no other descriptor beyond stdio.
func TestSocketActivationOneApp(t *testing.T) {
	e := newRealEnv(t)
	answer, _, out, code := e.socketActivated(e.img, "--exec=/inspect", "--", "--print-pid", "--print-fds", "--serve-fd=3")
	if code != 0 {
		t.Fatalf("rkt run: exit %d\nstdout: %s", code, out)
	}
	pid, _ := inspectValue(out, "pid")
	want := "served pid=" + pid + " LISTEN_PID=" + pid + " LISTEN_FDS=1 LISTEN_FDNAMES=web"
	if pid == "" || answer != want {
		t.Errorf("answer %q, want %q\nstdout: %s", answer, want, out)
	}
	// Only the socket beyond stdio (and the directory the listing reads).
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "fd: "))
		if !strings.HasPrefix(l, "fd: ") || len(f) < 2 {
			continue
		}
		// The app's own Go runtime has its epoll descriptors.
		if n, _ := strconv.Atoi(f[0]); n > 3 && !strings.HasPrefix(f[1], "/proc/") && !strings.HasPrefix(f[1], "anon_inode:") {
			t.Errorf("the app has descriptor %s", l)
		}
	}
	if !strings.Contains(lineWith(out, "fd: 3 "), "socket:") {
		t.Errorf("fd 3 of the app is not the socket: %q", lineWith(out, "fd: 3 "))
	}
}

// lineWith is the first line of out that starts with prefix, or "".
func lineWith(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestSocketActivationMultiApp: in a two-app pod (with a network
// namespace of its own) only the app given --socket-activated gets the
// socket; the other has no fd 3 and no LISTEN_FDS.
func TestSocketActivationMultiApp(t *testing.T) {
	e := newRealEnv(t)
	other := e.writeImage("other.aci", e.inspectACI("rkt.dev/other"))
	answer, _, out, code := e.socketActivated(
		"--net=none", // the sockets work from the pod's own network namespace
		other, "--exec=/inspect", "--", "--print-msg=other app", "--print-fds", "--print-env=LISTEN_FDS", "--print-env=LISTEN_PID", "---",
		e.img, "--socket-activated", "--exec=/inspect", "--", "--print-pid", "--serve-fd=3")
	if code != 0 {
		t.Fatalf("rkt run: exit %d\nstdout: %s", code, out)
	}
	if !strings.HasPrefix(answer, "served pid=") || !strings.Contains(answer, "LISTEN_FDS=1 LISTEN_FDNAMES=web") {
		t.Errorf("answer %q, want one from the socket-activated app", answer)
	}
	if !strings.Contains(out, "other app") || !strings.Contains(out, "LISTEN_FDS is unset") || !strings.Contains(out, "LISTEN_PID is unset") {
		t.Errorf("the other app sees socket activation's environment\nstdout: %s", out)
	}
	if l := lineWith(out, "fd: 3 "); l != "" && strings.Contains(l, "socket:") {
		t.Errorf("the other app has the socket: %q\nstdout: %s", l, out)
	}
}

// TestSocketActivationOptOut: the app of a one-app pod given
// --socket-activated=false gets no socket, and rkt says no app took them.
func TestSocketActivationOptOut(t *testing.T) {
	e := newRealEnv(t)
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatalf("systemd-socket-activate (package systemd) is needed: %v", err)
	}
	addr := "127.0.0.1:" + freeLoopbackPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rkt := e.Cmd(ctx, insecureImage, "run", hostNet, e.img, "--socket-activated=false", "--exec=/inspect", "--", "--print-fds", "--print-env=LISTEN_FDS")
	cmd := exec.CommandContext(ctx, sa, append([]string{"-l", addr, rkt.Path}, rkt.Args[1:]...)...)
	cmd.Env = rkt.Env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rkt run: %v\nstderr: %s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "LISTEN_FDS is unset") || strings.Contains(lineWith(out, "fd: 3 "), "socket:") {
		t.Errorf("the app that said no got the socket\nstdout: %s", out)
	}
	if !strings.Contains(stderr.String(), "no app of the pod gets the sockets of socket activation (LISTEN_FDS=1)") {
		t.Errorf("rkt did not say no app took the sockets\nstderr: %s", stderr.String())
	}
}

// notifyApp is an image that supports systemd notify running script.
func (e *realEnv) notifyApp(script string) string {
	a := e.inspectACI("rkt.dev/notifier", "/bin/sh", "-c", script)
	a.Image.Annotations = map[string]string{"appc.io/executor/supports-systemd-notify": "true"}
	return e.writeImage("notifier.aci", a)
}

// TestSystemdNotifyRelay: what an app that supports notify sends reaches
// NOTIFY_SOCKET from rkt run's pid (the unit's main pid), MAINPID= from
// the app is not passed on, and the app gets WATCHDOG_USEC with
// WATCHDOG_PID its own pid, as systemd set them for rkt.
func TestSystemdNotifyRelay(t *testing.T) {
	e := newRealEnv(t)
	img := e.notifyApp(`/inspect --print-ppid --print-env=WATCHDOG_USEC --print-env=WATCHDOG_PID &&
exec /inspect --sd-notify='READY=1\nSTATUS=serving\nMAINPID=1\nWATCHDOG=1\nEXTEND_TIMEOUT_USEC=5000000' --sleep=1s`)
	ns := newNotifySocket(t)
	f := filepath.Join(t.TempDir(), "uuid")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := e.Cmd(ctx, insecureImage, "run", hostNet, "--uuid-file-save="+f, img)
	// WATCHDOG_PID is rkt run's pid: the test cannot know it before the
	// start, so rkt runs through sh, which execs it with the variable.
	cmd.Args = append([]string{"/bin/sh", "-c", `WATCHDOG_PID=$$ exec "$@"`, "sh"}, cmd.Args...)
	cmd.Path = "/bin/sh"
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=30000000")
	bp := e.startCmd(cmd, cancel, f)
	var got []notifyMsg
	for {
		m, err := ns.recv(5 * time.Second)
		if err != nil {
			break
		}
		got = append(got, m)
	}
	if code := bp.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("rkt run: exit %d\nstderr: %s", code, bp.errb.String())
	}
	var all []string
	for _, m := range got {
		if m.pid != bp.cmd.Process.Pid {
			t.Errorf("notification %q from pid %d, want from rkt run (pid %d)", m.data, m.pid, bp.cmd.Process.Pid)
		}
		all = append(all, strings.Split(m.data, "\n")...)
	}
	joined := strings.Join(all, " ")
	for _, want := range []string{"READY=1", "STATUS=serving", "WATCHDOG=1", "EXTEND_TIMEOUT_USEC=5000000"} {
		n := 0
		for _, l := range all {
			if l == want {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s reached NOTIFY_SOCKET %d times, want once (got %q)", want, n, joined)
		}
	}
	if strings.Contains(joined, "MAINPID") {
		t.Errorf("the app's MAINPID= was passed on: %q", joined)
	}
	out := bp.out.String()
	pid, _ := inspectValue(out, "ppid") // the shell's, which the launcher exec'd
	if !strings.Contains(out, "WATCHDOG_USEC=30000000") || pid == "" || !strings.Contains(out, "WATCHDOG_PID="+pid+"\n") {
		t.Errorf("the app did not get WATCHDOG_USEC=30000000 with WATCHDOG_PID its pid %s\nstdout: %s", pid, out)
	}
}

// TestSystemdNotifyWatchdogForOther: a WATCHDOG_USEC meant for another
// process (WATCHDOG_PID not rkt's) does not reach the app.
func TestSystemdNotifyWatchdogForOther(t *testing.T) {
	e := newRealEnv(t)
	img := e.notifyApp(`exec /inspect --print-env=WATCHDOG_USEC --sd-notify=READY=1`)
	ns := newNotifySocket(t)
	bp := e.start([]string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=30000000", "WATCHDOG_PID=1"}, img)
	if code := bp.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("rkt run: exit %d\nstderr: %s", code, bp.errb.String())
	}
	if !strings.Contains(bp.out.String(), "WATCHDOG_USEC is unset") {
		t.Errorf("the app got a watchdog meant for pid 1\nstdout: %s", bp.out.String())
	}
}

// stopTime stops the pod with rkt stop ARGS (an app that ignores
// SIGTERM) and returns how long rkt run took to exit, and its code.
func (e *realEnv) stopTime(bp *bgPod, args ...string) (time.Duration, int) {
	e.t.Helper()
	e.waitReady(bp)
	e.waitAppFile(bp, realApp, "started") // SIGTERM is ignored from now on
	start := time.Now()
	if r := e.Run(append(append([]string{"stop"}, args...), bp.UUID)...); r.Exit != 0 {
		e.t.Fatalf("rkt stop: exit %d: %s", r.Exit, r.Stderr)
	}
	code := bp.wait(e.t, 30*time.Second)
	return time.Since(start), code
}

// TestStopTimeout: rkt stop --timeout=1s SIGKILLs an app that ignores
// SIGTERM after a second, not the default ten.
func TestStopTimeout(t *testing.T) {
	e := newRealEnv(t)
	bp := e.start(nil, e.img, "--exec=/inspect", "--", "--ignore-sigterm", "--write-file=/started", "--content=1", "--sleep=60s")
	d, code := e.stopTime(bp, "--timeout=1s")
	if d < 900*time.Millisecond || d > 6*time.Second || code != 137 {
		t.Errorf("rkt run exited %d after %v, want 137 after about 1s\nstderr: %s", code, d, bp.errb.String())
	}
}

// TestStopTimeoutPerPod: rkt run --stop-timeout=1s is the pod's default.
func TestStopTimeoutPerPod(t *testing.T) {
	e := newRealEnv(t)
	bp := e.start(nil, "--stop-timeout=1s", e.img, "--exec=/inspect", "--", "--ignore-sigterm", "--write-file=/started", "--content=1", "--sleep=60s")
	d, code := e.stopTime(bp)
	if d < 900*time.Millisecond || d > 6*time.Second || code != 137 {
		t.Errorf("rkt run exited %d after %v, want 137 after about 1s\nstderr: %s", code, d, bp.errb.String())
	}
}

// TestStopTimeoutBad: a bad --timeout or --stop-timeout is refused with
// exit 254, one line naming the flag, and the pod keeps running.
func TestStopTimeoutBad(t *testing.T) {
	e := newRealEnv(t)
	r := e.run("--stop-timeout=soon", e.img)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "--stop-timeout") {
		t.Errorf("rkt run --stop-timeout=soon: exit %d, stderr %q; want 254 naming the flag", r.Exit, r.Stderr)
	}
	bp := e.startSleeper()
	r = e.Run("stop", "--timeout=-1s", bp.UUID)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "--timeout") {
		t.Errorf("rkt stop --timeout=-1s: exit %d, stderr %q; want 254 naming the flag", r.Exit, r.Stderr)
	}
	select {
	case <-bp.done:
		t.Errorf("the pod stopped")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStopTimeoutOldStage1: rkt stop --timeout of a pod whose stage1 is
// of an interface version before stop timeouts (the stub's) fails with
// exit 254, saying so, and signals nothing.
func TestStopTimeoutOldStage1(t *testing.T) {
	e := newPodEnv(t)
	bp := e.startPod("rkt.dev/stub-sleep=30s")
	e.MustFail(254, "takes no stop timeout", "stop", "--timeout=1s", bp.UUID)
	select {
	case <-bp.done:
		t.Errorf("the pod stopped")
	case <-time.After(200 * time.Millisecond):
	}
	e.MustRun("stop", bp.UUID)
	bp.wait(t, 10*time.Second)
}

// TestSIGTERMExitCodes: SIGTERM to rkt run (systemctl stop with
// KillMode=mixed) makes rkt exit 0 when the app exits cleanly on it, and
// 143 (the units' SuccessExitStatus=143) when the app dies of it.
func TestSIGTERMExitCodes(t *testing.T) {
	e := newRealEnv(t)
	for _, c := range []struct {
		flag string
		want int
	}{{"--silent-sigterm", 0}, {"--print-msg=x", 143}} {
		bp := e.startSleeper(c.flag)
		if err := bp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := bp.wait(t, 15*time.Second); code != c.want {
			t.Errorf("app %s: rkt run after SIGTERM exited %d, want %d\nstderr: %s", c.flag, code, c.want, bp.errb.String())
		}
	}
}

// TestSocketActivationBadEnv: LISTEN_FDS for rkt naming descriptors that
// are not open fails the run with 254 and one line saying so; the app
// does not run.
func TestSocketActivationBadEnv(t *testing.T) {
	e := newRealEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.Cmd(ctx, insecureImage, "run", hostNet, e.img, "--exec=/inspect", "--", "--print-msg=app ran")
	cmd.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 exec "$@"`, "sh"}, cmd.Args...)
	cmd.Path = "/bin/sh"
	out, err := cmd.CombinedOutput()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	if err == nil || code != 254 || !strings.Contains(string(out), "LISTEN_FDS=2: descriptor 3 is not open") || strings.Contains(string(out), "app ran") {
		t.Errorf("rkt run with LISTEN_FDS=2 and no descriptors: exit %d, want 254 naming descriptor 3\noutput: %s", code, out)
	}
}
