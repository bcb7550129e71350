package stop

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/proc"
)

func TestStopErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if err := Stop(ctx, dir, false); err == nil {
		t.Error("no pid file: no error")
	}
	os.WriteFile(filepath.Join(dir, "pid"), []byte("garbage"), 0o644)
	if err := Stop(ctx, dir, false); err == nil {
		t.Error("bad pid file: no error")
	}
}

// sleeper starts a process in dir; done is closed when it has exited.
func sleeper(t *testing.T, dir string) (c *exec.Cmd, done chan struct{}) {
	t.Helper()
	c = exec.Command("sleep", "10")
	c.Dir = dir
	if err := c.Start(); err != nil {
		t.Skip(err)
	}
	done = make(chan struct{})
	go func() { c.Wait(); close(done) }()
	t.Cleanup(func() { c.Process.Kill(); <-done })
	return c, done
}

// TestStopRefusesAnotherProcess: a pid file naming a live process that is
// not the recorded one (the pid was reused: another start time), or with
// no start time recorded, is an error, and that process is not signalled.
func TestStopRefusesAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	other, done := sleeper(t, t.TempDir())
	pidFile := filepath.Join(dir, "pid")
	if err := proc.Record(pidFile, other.Process.Pid); err != nil {
		t.Fatal(err)
	}
	start, _ := os.ReadFile(pidFile + proc.StartSuffix)
	n, _ := strconv.ParseUint(strings.TrimSpace(string(start)), 10, 64)
	os.WriteFile(pidFile+proc.StartSuffix, []byte(strconv.FormatUint(n-1, 10)), 0o644)
	if err := Stop(context.Background(), dir, true); !errors.Is(err, proc.ErrNotIdentified) {
		t.Errorf("stop with a reused pid: %v, want an error saying the process cannot be identified", err)
	}
	os.Remove(pidFile + proc.StartSuffix)
	if err := Stop(context.Background(), dir, true); !errors.Is(err, proc.ErrNotIdentified) {
		t.Errorf("stop with no start time recorded: %v, want an error saying the process cannot be identified", err)
	}
	select {
	case <-done:
		t.Error("a process outside the pod was killed")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStopSignalsTheRecordedProcess: the recorded process is signalled,
// whatever its working directory; once it is gone, stop succeeds quietly.
func TestStopSignalsTheRecordedProcess(t *testing.T) {
	dir := t.TempDir()
	own, done := sleeper(t, t.TempDir())
	if err := proc.Record(filepath.Join(dir, "pid"), own.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := Stop(context.Background(), dir, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if own.ProcessState.Success() {
			t.Error("the pod's process exited 0, want killed by SIGTERM")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pod's process was not stopped")
	}
	if err := Stop(context.Background(), dir, true); err != nil {
		t.Errorf("stop of a pod whose process is gone: %v", err)
	}
}
