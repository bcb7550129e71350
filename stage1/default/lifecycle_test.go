package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/stage1/stage1test"
)

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// started is a pod running in the background.
type started struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan int
}

func startPod(t *testing.T, p *stage1test.Pod, env []string, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c := p.Command(ctx, "init", append(append([]string{"--net=host"}, args...), p.UUID)...)
	c.Env = append(c.Env, env...)
	s := &started{cmd: c, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan int, 1)}
	c.Stdout, c.Stderr = s.stdout, s.stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := c.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
		s.done <- code
	}()
	return s
}

func (s *started) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case code := <-s.done:
		return code
	case <-time.After(timeout):
		t.Fatalf("the pod did not exit within %v\nstdout: %s\nstderr: %s", timeout, s.stdout, s.stderr)
	}
	return 0
}

func waitReady(t *testing.T, p *stage1test.Pod, s *started) {
	t.Helper()
	if !p.WaitFile("stage1/rootfs/rkt/supervisor-status", 10*time.Second) {
		t.Fatalf("the pod never got ready\nstdout: %s\nstderr: %s", s.stdout, s.stderr)
	}
}

// waitOutput waits for s to appear on the pod's stdout.
func waitOutput(t *testing.T, st *started, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(st.stdout.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output\nstdout: %s\nstderr: %s", s, st.stdout, st.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSIGTERMIsForwarded(t *testing.T) {
	// --print-msg runs after inspect installed its signal handlers.
	p := newPod(t, app("a", "--print-msg=up", "--sleep=30"))
	s := startPod(t, p, nil)
	waitOutput(t, s, "up")
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 10*time.Second); code != 143 {
		t.Errorf("exit %d, want 143 (the app's)\nstderr %s", code, s.stderr)
	}
	if !strings.Contains(s.stdout.String(), "inspect: got SIGTERM") {
		t.Errorf("the app did not get SIGTERM: %q", s.stdout)
	}
}

func TestGracePeriodKill(t *testing.T) {
	requireRoot(t)
	// sh ignores SIGTERM: after the grace period everything is killed.
	a := stage1testApp("a", "/bin/sh", "-c", "trap '' TERM; echo started; sleep 30; echo survived")
	p := stage1test.NewPod(t, binDir, stage1test.Spec{
		Apps:        []stage1test.App{a},
		Annotations: map[string]string{"rkt.dev/stop-grace-period": "500ms"},
	})
	s := startPod(t, p, nil)
	waitOutput(t, s, "started")
	begin := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	code := s.wait(t, 10*time.Second)
	if code != 137 {
		t.Errorf("exit %d, want 137 (SIGKILL)", code)
	}
	if d := time.Since(begin); d < 400*time.Millisecond || d > 5*time.Second {
		t.Errorf("killed after %v, want about the 500ms grace period", d)
	}
	if st, _ := p.Status("a"); st != 137 {
		t.Errorf("status %d, want 137", st)
	}
}

func TestStop(t *testing.T) {
	p := newPod(t, app("a", "--print-msg=up", "--sleep=30"))
	s := startPod(t, p, nil)
	waitOutput(t, s, "up")
	if r := p.Run("stop", p.UUID); r.Code != 0 {
		t.Fatalf("stop: exit %d %s", r.Code, r.Stderr)
	}
	if code := s.wait(t, 10*time.Second); code != 143 {
		t.Errorf("after stop: exit %d, want 143", code)
	}
	// Stopping a stopped pod is fine.
	if r := p.Run("stop", p.UUID); r.Code != 0 {
		t.Errorf("second stop: exit %d %s", r.Code, r.Stderr)
	}

	p = newPod(t, app("a", "--silent-sigterm", "--print-msg=up", "--sleep=30"))
	s = startPod(t, p, nil)
	waitOutput(t, s, "up")
	if r := p.Run("stop", "--force", p.UUID); r.Code != 0 {
		t.Fatalf("stop --force: exit %d %s", r.Code, r.Stderr)
	}
	if code := s.wait(t, 10*time.Second); code != 137 {
		t.Errorf("after stop --force: exit %d, want 137", code)
	}
}

// TestZombiesAreReaped: an orphan re-parented to the supervisor is reaped.
func TestZombiesAreReaped(t *testing.T) {
	a := stage1testApp("a", "/bin/sh", "-c", "(sleep 0.2 &) ; sleep 2")
	p := newPod(t, a)
	s := startPod(t, p, nil)
	waitReady(t, p, s)
	time.Sleep(800 * time.Millisecond)
	pid := strings.TrimSpace(p.ReadFile("pid"))
	children, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range strings.Fields(string(children)) {
		stat, _ := os.ReadFile("/proc/" + c + "/stat")
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			t.Errorf("zombie child %s of the supervisor: %s", c, stat)
		}
	}
	if code := s.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d: %s", code, s.stderr)
	}
}

func TestEnter(t *testing.T) {
	p := newPod(t, app("a", "--sleep=30"))
	s := startPod(t, p, nil)
	waitReady(t, p, s)
	appPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))
	r := p.Run("enter", "--pid="+appPid, "--appname=a", "--", "/inspect", "--print-hostname", "--print-pidns", "--print-env=AC_APP_NAME", "--stat-file=/inspect", "--exit-code=7")
	if r.Code != 7 {
		t.Fatalf("enter: exit %d, want 7\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	want(t, r.Stdout, "hostname", "rkt-"+p.UUID)
	if !strings.Contains(r.Stdout, "AC_APP_NAME=a") {
		t.Errorf("enter did not get the app's environment: %q", r.Stdout)
	}
	pidns, _ := os.Readlink("/proc/" + appPid + "/ns/pid")
	want(t, r.Stdout, "pidns", pidns)
	// A relative command is looked up in the app's PATH.
	if r := p.Run("enter", "--pid="+appPid, "--appname=a", "--", "sh", "-c", "test -e /inspect && cat /proc/1/comm"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "rkt-supervisor" {
		t.Errorf("enter sh: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	p.Run("stop", p.UUID)
	s.wait(t, 10*time.Second)
}

// TestNotifyReadiness: with NOTIFY_SOCKET set, stage1 says READY=1 once
// the apps run, or once an app that supports notify said so itself.
func TestNotifyReadiness(t *testing.T) {
	requireRoot(t)
	listen := func(t *testing.T) (*net.UnixConn, string) {
		sock := filepath.Join(t.TempDir(), "notify")
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, sock
	}
	read := func(c *net.UnixConn, d time.Duration) string {
		c.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}

	// No app supports notify: READY=1 when they run.
	c, sock := listen(t)
	p := newPod(t, app("a", "--sleep=30"))
	s := startPod(t, p, []string{"NOTIFY_SOCKET=" + sock})
	if msg := read(c, 10*time.Second); msg != "READY=1" {
		t.Errorf("got %q, want READY=1\nstderr %s", msg, s.stderr)
	}
	p.Run("stop", "--force", p.UUID)
	s.wait(t, 10*time.Second)

	// The app supports notify but never says READY=1: no readiness.
	c, sock = listen(t)
	a := app("a", "--sleep=1")
	a.ImageAnnotations = map[string]string{"appc.io/executor/supports-systemd-notify": "true"}
	p = newPod(t, a)
	s = startPod(t, p, []string{"NOTIFY_SOCKET=" + sock})
	if msg := read(c, 700*time.Millisecond); msg != "" {
		t.Errorf("got %q before the app was ready", msg)
	}
	s.wait(t, 10*time.Second)

	// It says READY=1 after a while: forwarded then.
	c, sock = listen(t)
	// inspect sends before it sleeps: the shell waits first.
	a = stage1testApp("a", "/bin/sh", "-c", "sleep 0.3; exec /inspect --print-env=NOTIFY_SOCKET --sd-notify=READY=1 --sleep=30")
	a.ImageAnnotations = map[string]string{"appc.io/executor/supports-systemd-notify": "true"}
	p = newPod(t, a)
	begin := time.Now()
	s = startPod(t, p, []string{"NOTIFY_SOCKET=" + sock})
	if msg := read(c, 10*time.Second); msg != "READY=1" {
		t.Errorf("got %q, want READY=1\nstdout %s\nstderr %s", msg, s.stdout, s.stderr)
	}
	if time.Since(begin) < 300*time.Millisecond {
		t.Errorf("READY=1 came before the app sent it")
	}
	p.Run("stop", "--force", p.UUID)
	s.wait(t, 10*time.Second)
	if !strings.Contains(s.stdout.String(), "NOTIFY_SOCKET=@rkt-") {
		t.Errorf("the app's NOTIFY_SOCKET: %q", s.stdout)
	}
}

func TestNetNone(t *testing.T) {
	r := runApp(t, app("a", "--print-iface-count", "--print-netns"))
	host, _ := stage1test.Value(r.Stdout, "interfaces")
	p := newPod(t, app("a", "--print-iface-count", "--print-netns", "--get-http=http://127.0.0.1:1/"))
	r = p.RunPod("--net=none")
	want(t, r.Stdout, "interfaces", "1")
	self, _ := os.Readlink("/proc/self/ns/net")
	if v, _ := stage1test.Value(r.Stdout, "netns"); v == self || v == "" {
		t.Errorf("--net=none: netns %q, host %q", v, self)
	}
	if n, _ := strconv.Atoi(host); n < 2 {
		t.Logf("the host has %s interfaces", host)
	}
	// lo is up: connecting to a closed port is refused, not unreachable.
	if !strings.Contains(r.Stderr, "connection refused") {
		t.Errorf("lo is not up: %q", r.Stderr)
	}
}
