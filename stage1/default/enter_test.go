package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/stage1/stage1test"
)

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
		{name: "user", user: "user", cmd: "/inspect", uid: "1000", nnp: "1"},
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
				"--print-user", "--print-caps-pid=0", "--print-no-new-privs", "--print-seccomp", "--print-mntns",
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
