package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/stage1/stage1test"
)

// hostNet is the test's network namespace.
func hostNet(t *testing.T) string {
	l, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// statusOf returns field key of /proc/PID/status.
func statusOf(t *testing.T, pid, key string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%s/status", key, pid)
	return ""
}

// TestEnterGetsTheAppsPrivileges: a command run by enter, here the pod's
// own /bin/ps, which the app replaced with a program of its choosing,
// runs with what the app has and nothing more: its capabilities,
// no_new_privs, seccomp filter and user, in its mount namespace and
// cgroups; it cannot reach the host's file system by joining the mount
// namespace /proc/self/ns/mnt names (which, when enter only chrooted,
// was the host's), even with every capability and no seccomp filter; and
// it gets no descriptor of the caller's but stdio.
func TestEnterGetsTheAppsPrivileges(t *testing.T) {
	for _, c := range []struct {
		name, user string
		runArgs    []string
		cmd        string // the entered command
		uid        string
		nnp        string
	}{
		{name: "root", user: "0", cmd: "ps", uid: "0", nnp: "0"},
		{name: "user", user: "user", runArgs: []string{"--net=none"}, cmd: "/inspect", uid: "1000", nnp: "1"},
		{name: "privileged", user: "0", runArgs: []string{"--disable-seccomp", "--disable-capabilities-restriction"}, cmd: "ps", uid: "0", nnp: "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			script := "exec /inspect --sleep=30"
			if c.user == "0" {
				script = "rm -f /bin/ps && cp /inspect /bin/ps && touch /ps-replaced && " + script
			}
			a := stage1testApp("a", "/bin/sh", "-c", script)
			a.User = c.user
			p := newPod(t, a)
			s := startPod(t, p, nil, c.runArgs...)
			waitReady(t, p, s)
			appPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))
			if c.user == "0" {
				deadline := time.Now().Add(10 * time.Second)
				for _, err := os.Stat("/proc/" + appPid + "/root/ps-replaced"); err != nil; _, err = os.Stat("/proc/" + appPid + "/root/ps-replaced") {
					if time.Now().After(deadline) {
						t.Fatalf("the app did not replace /bin/ps: %v\n%s", err, s.stderr)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			hostFile := filepath.Join(t.TempDir(), "escaped")
			// A descriptor of a host directory, not close-on-exec, as a
			// careless caller might leave open.
			leak, err := os.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer leak.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := p.Command(ctx, "enter", "--pid="+appPid, "--appname=a", "--", c.cmd,
				"--print-user", "--print-caps-pid=0", "--print-no-new-privs", "--print-seccomp", "--print-mntns", "--print-netns", "--print-ipcns", "--print-utsns", "--print-pidns",
				"--read-file=/proc/self/cgroup", "--escape-mntns="+hostFile)
			cmd.ExtraFiles = append(cmd.ExtraFiles, leak)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("enter: %v\nstdout %s\nstderr %s", err, out.String(), errb.String())
			}
			o := out.String()
			want(t, o, "uid", c.uid)
			want(t, o, "euid", c.uid)
			for _, k := range []string{"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"} {
				want(t, o, k, statusOf(t, appPid, k))
			}
			if c.name != "privileged" {
				if v, _ := stage1test.Value(o, "CapEff"); v == statusOf(t, "self", "CapEff") {
					t.Errorf("the entered command has every capability of the host's root (CapEff %s)", v)
				}
			}
			want(t, o, "no_new_privs", c.nnp)
			want(t, o, "Seccomp", statusOf(t, appPid, "Seccomp"))
			if c.name != "privileged" {
				want(t, o, "Seccomp", "2")
			}
			appMnt, _ := os.Readlink("/proc/" + appPid + "/ns/mnt")
			hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
			want(t, o, "mntns", appMnt)
			if appMnt == hostMnt {
				t.Fatalf("the app is in the host's mount namespace %s", hostMnt)
			}
			for _, ns := range []string{"net", "ipc", "uts", "pid"} {
				l, _ := os.Readlink("/proc/" + appPid + "/ns/" + ns)
				want(t, o, ns+"ns", l)
			}
			if appNet, _ := os.Readlink("/proc/" + appPid + "/ns/net"); c.name == "user" && appNet == hostNet(t) {
				t.Fatalf("the app of a --net=none pod is in the host's network namespace")
			}
			appCg, err := os.ReadFile("/proc/" + appPid + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(o, "<<<"+string(appCg)+">>>") {
				t.Errorf("the entered command is not in the app's cgroups %q\noutput:\n%s", appCg, o)
			}
			if _, err := os.Stat(hostFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the entered command wrote %s on the host (stat: %v)\noutput:\n%s", hostFile, err, o)
			}
			if v, _ := stage1test.Value(o, "escape mntns"); c.name != "privileged" && v == "joined" {
				t.Errorf("the entered command could join a mount namespace\noutput:\n%s", o)
			}
			// Its descriptors: stdio and the one ls reads with.
			r := p.Run("enter", "--pid="+appPid, "--appname=a", "--", "/bin/ls", "/proc/self/fd")
			if fds := strings.Fields(r.Stdout); r.Code != 0 || len(fds) != 4 {
				t.Errorf("enter ls /proc/self/fd: exit %d, descriptors %q, want 0 1 2 and ls's own\nstderr %s", r.Code, fds, r.Stderr)
			}
			p.Run("stop", p.UUID)
			s.wait(t, 10*time.Second)
		})
	}
}

// startEnter starts enter in the background, running cmd in app a of the
// running pod p.
func startEnter(t *testing.T, p *stage1test.Pod, cmd ...string) *started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	appPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))
	c := p.Command(ctx, "enter", append([]string{"--pid=" + appPid, "--appname=a", "--"}, cmd...)...)
	s := &started{cmd: c, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan int, 1)}
	c.Stdout, c.Stderr = s.stdout, s.stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		code, _ := exitOf(c.Wait())
		s.done <- code
	}()
	return s
}

// exitOf is the exit code of a finished command (128+N for signal N).
func exitOf(err error) (int, error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// TestEnterForwardsSignals: SIGINT, SIGTERM... sent to enter go to the
// command's process group (the command is in a session of its own, out
// of reach of the caller's terminal), and enter exits with the command's
// code.
func TestEnterForwardsSignals(t *testing.T) {
	p := newPod(t, app("a", "--sleep=30"))
	s := startPod(t, p, nil)
	waitReady(t, p, s)
	for _, c := range []struct {
		sig  syscall.Signal
		cmd  []string
		code int // -1: any
		msg  string
	}{
		{syscall.SIGINT, []string{"/inspect", "--print-msg=up", "--sleep=30"}, 130, "inspect: got SIGINT"},
		{syscall.SIGTERM, []string{"/inspect", "--print-msg=up", "--sleep=30"}, 143, "inspect: got SIGTERM"},
		// A child of the command gets ^C too, as from a terminal.
		{syscall.SIGINT, []string{"/bin/sh", "-c", "/inspect --print-msg=up --sleep=30; true"}, -1, "inspect: got SIGINT"},
	} {
		e := startEnter(t, p, c.cmd...)
		waitOutput(t, e, "up")
		e.cmd.Process.Signal(c.sig)
		if code := e.wait(t, 10*time.Second); (c.code >= 0 && code != c.code) || !strings.Contains(e.stdout.String(), c.msg) {
			t.Errorf("enter %q after %v: exit %d, want %d; stdout %q (want %q); stderr %q", c.cmd, c.sig, code, c.code, e.stdout, c.msg, e.stderr)
		}
	}
	p.Run("stop", p.UUID)
	s.wait(t, 10*time.Second)
}

// TestEnterTerminalIsNotControlling: the caller's terminal is not the
// entered command's controlling terminal, so the command cannot push
// input into it (TIOCSTI) for the caller's shell to run after enter.
func TestEnterTerminalIsNotControlling(t *testing.T) {
	p := newPod(t, app("a", "--sleep=30"))
	s := startPod(t, p, nil)
	waitReady(t, p, s)
	master, slave := openPTY(t)
	appPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := p.Command(ctx, "enter", "--pid="+appPid, "--appname=a", "--", "/inspect", "--check-tty", "--tiocsti=id\n")
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	// The terminal is enter's controlling terminal, as an operator's is.
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(master) // EIO once every slave side is closed
		out <- strings.ReplaceAll(string(b), "\r", "")
	}()
	if err := c.Wait(); err != nil {
		t.Errorf("enter: %v", err)
	}
	var got string
	select {
	case got = <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("no output from the terminal")
	}
	if !strings.Contains(got, "stdin tty: true") || !strings.Contains(got, "tiocsti: operation not permitted") {
		t.Errorf("the entered command pushed input into the caller's terminal, or did not run:\n%s", got)
	}
	p.Run("stop", p.UUID)
	s.wait(t, 10*time.Second)
}

// TestEnterRefuses: enter refuses, with a one-line reason and 254, a PID
// that is not the app's (a stale or mistyped PID, the pod's supervisor,
// another app's process) and an app the pod does not have; a missing
// command is 127.
func TestEnterRefuses(t *testing.T) {
	p := newPod(t, app("a", "--sleep=30"), app("b", "--sleep=30"))
	s := startPod(t, p, nil)
	waitReady(t, p, s)
	appPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))
	otherPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/b"))
	supPid := strings.TrimSpace(p.ReadFile("pid"))
	for _, c := range []struct{ pid, app, msg string }{
		{strconv.Itoa(os.Getpid()), "a", "is not a process of this pod"},
		{supPid, "a", "has no mount namespace of its own"},
		// Another app's process: its namespaces with a's privileges.
		{otherPid, "a", "is not the app's process (stage1 recorded pid " + appPid + ")"},
		{appPid, "nope", "the pod has no such app"},
	} {
		r := p.Run("enter", "--pid="+c.pid, "--appname="+c.app, "--", "/inspect", "--print-msg=ran")
		if r.Code != 254 || !strings.Contains(r.Stderr, c.msg) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || strings.Contains(r.Stdout, "ran") {
			t.Errorf("enter --pid=%s --appname=%s: exit %d, stdout %q, stderr %q; want 254 and %q", c.pid, c.app, r.Code, r.Stdout, r.Stderr, c.msg)
		}
	}
	// A command the app does not have: 127, as for an app.
	if r := p.Run("enter", "--pid="+appPid, "--appname=a", "--", "/nope"); r.Code != 127 || !strings.Contains(r.Stderr, "/nope") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("enter /nope: exit %d, stderr %q; want 127 and a line naming /nope", r.Code, r.Stderr)
	}
	p.Run("stop", p.UUID)
	s.wait(t, 10*time.Second)
}
