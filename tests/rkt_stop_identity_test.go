package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests of this file check that rkt stop finds the pod's process by
// what stage1 recorded of it (pid and start time), not by paths that
// differ when rkt runs in another root or mount namespace, and that it
// never signals a process that merely has the recorded pid.

// stopElsewhere runs `rkt stop UUID` in a new private mount namespace,
// after setup (a shell script run there first) and with the data dir
// given as dataDir; the rest of the script runs rkt as rktCmd.
func (e *realEnv) stopElsewhere(script string, env ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run unshare: %v", err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// TestPodRealStopFromAnotherMountNamespace: rkt stop run in another mount
// namespace, where the data directory is seen at another path (a bind
// mount), stops the pod.
func TestPodRealStopFromAnotherMountNamespace(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startSleeper()
	alt := filepath.Join(e.dir, "elsewhere")
	if err := os.Mkdir(alt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := e.stopElsewhere(`mount --bind "$DATA" "$ALT"; exec "$RKT" --dir="$ALT" stop "$UUID"`,
		"DATA="+e.Dir, "ALT="+alt, "RKT="+e.Bin, "UUID="+bp.UUID)
	if code != 0 || strings.TrimSpace(out) != bp.UUID {
		t.Fatalf("rkt stop in another mount namespace: exit %d, output %q", code, out)
	}
	if code := bp.wait(t, 10*time.Second); code != 143 {
		t.Errorf("rkt run after a stop from another mount namespace: exit %d, want 143\nstderr: %s", code, bp.errb.String())
	}
}

// TestPodRealStopFromChroot: rkt stop run in a chroot (its own /proc, the
// data directory bind-mounted at /data, /dev/null) stops the pod, and stop --force
// kills it.
func TestPodRealStopFromChroot(t *testing.T) {
	e := newRealEnv(t)
	root := filepath.Join(e.dir, "root")
	for _, d := range []string{"data", "proc", "bin", "tmp", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "dev", "null"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(e.Bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "rkt"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	const script = `mount --bind "$DATA" "$ROOT/data"; mount -t proc proc "$ROOT/proc"; mount --bind /dev/null "$ROOT/dev/null"
exec chroot "$ROOT" /bin/rkt --dir=/data --local-config=/tmp --system-config=/tmp --user-config=/tmp stop $FORCE "$UUID"`
	for _, force := range []bool{false, true} {
		bp := e.startSleeper()
		flag := ""
		if force {
			flag = "--force"
		}
		out, code := e.stopElsewhere(script, "DATA="+e.Dir, "ROOT="+root, "UUID="+bp.UUID, "FORCE="+flag)
		if code != 0 || strings.TrimSpace(out) != bp.UUID {
			t.Fatalf("rkt stop %s in a chroot: exit %d, output %q", flag, code, out)
		}
		want := 143
		if force {
			want = 137
		}
		if code := bp.wait(t, 10*time.Second); code != want {
			t.Errorf("rkt run after a stop %s from a chroot: exit %d, want %d\nstderr: %s", flag, code, want, bp.errb.String())
		}
	}
}

// TestPodRealStopRefusesAnUnrelatedProcess: when the pod's pid file names
// a live process that is not the pod's (as after a pid reuse), rkt stop
// fails, says why, and signals nothing; with the pid file back, it stops
// the pod.
func TestPodRealStopRefusesAnUnrelatedProcess(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startSleeper()
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	otherDone := make(chan struct{})
	go func() { other.Wait(); close(otherDone) }()
	t.Cleanup(func() { other.Process.Kill(); <-otherDone })

	pidFile := filepath.Join(e.podDir(bp.UUID), "pid")
	orig, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"stop", bp.UUID}, {"stop", "--force", bp.UUID}} {
		r := e.MustFail(254, "cannot be identified", args...)
		if !strings.Contains(r.Stderr, bp.UUID) || !strings.Contains(r.Stderr, strconv.Itoa(other.Process.Pid)) {
			t.Errorf("rkt %s: the error does not name the pod and the pid: %s", strings.Join(args, " "), r.Stderr)
		}
	}
	select {
	case <-otherDone:
		t.Fatalf("rkt stop signalled the unrelated process: %v", other.ProcessState)
	case <-time.After(200 * time.Millisecond):
	}
	select {
	case <-bp.done:
		t.Fatalf("the pod ended although rkt stop refused")
	default:
	}
	if err := os.WriteFile(pidFile, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	e.MustRun("stop", bp.UUID)
	if code := bp.wait(t, 10*time.Second); code != 143 {
		t.Errorf("rkt run after stop: exit %d, want 143", code)
	}
	select {
	case <-otherDone:
		t.Errorf("the unrelated process ended: %v", other.ProcessState)
	default:
	}
}
