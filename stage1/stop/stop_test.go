package stop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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

// TestStopChecksThePodDirectory: a pid whose process does not run in the
// pod directory (the pid was reused) is left alone.
func TestStopChecksThePodDirectory(t *testing.T) {
	dir := t.TempDir()
	other := exec.Command("sleep", "10")
	other.Dir = t.TempDir()
	if err := other.Start(); err != nil {
		t.Skip(err)
	}
	defer other.Process.Kill()
	os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(other.Process.Pid)), 0o644)
	if err := Stop(context.Background(), dir, true); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- other.Wait() }()
	select {
	case <-done:
		t.Error("a process outside the pod was killed")
	case <-time.After(200 * time.Millisecond):
	}
	// The pod's own process is signalled.
	own := exec.Command("sleep", "10")
	own.Dir = dir
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(own.Process.Pid)), 0o644)
	if err := Stop(context.Background(), dir, false); err != nil {
		t.Fatal(err)
	}
	if err := own.Wait(); err == nil {
		t.Error("the pod's process was not stopped")
	}
}
