package proc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "30")
	if err := c.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

func TestRecordLoadSignal(t *testing.T) {
	c := startSleep(t)
	f := filepath.Join(t.TempDir(), "pid")
	if err := Record(f, c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	p, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid != c.Process.Pid || p.Start == 0 {
		t.Fatalf("loaded %+v for pid %d", p, c.Process.Pid)
	}
	h, err := p.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the recorded process was not killed: %v", c.ProcessState)
	}
	if _, err := p.Open(); !errors.Is(err, ErrExited) {
		t.Errorf("open after exit: %v, want ErrExited", err)
	}
	if err := h.Signal(unix.SIGTERM); !errors.Is(err, ErrExited) {
		t.Errorf("signal after exit: %v, want ErrExited", err)
	}
}

// TestAnotherProcessIsRefused: a pid file whose start time does not match
// the live process with that pid (the pid was reused) is refused, and the
// process is not signalled.
func TestAnotherProcessIsRefused(t *testing.T) {
	c := startSleep(t)
	p := Process{Pid: c.Process.Pid}
	start, err := StartTime(c.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p.Start = start - 1
	if _, err := p.Open(); !errors.Is(err, ErrNotIdentified) {
		t.Fatalf("open of a process with another start time: %v, want ErrNotIdentified", err)
	}
	if err := p.Check(); !errors.Is(err, ErrNotIdentified) {
		t.Fatalf("check: %v, want ErrNotIdentified", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("the unrelated process ended: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pid")
	if _, err := Load(f); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no pid file: %v", err)
	}
	os.WriteFile(f, []byte("garbage"), 0o644)
	if _, err := Load(f); err == nil {
		t.Error("bad pid file: no error")
	}
	os.WriteFile(f, []byte("12345\n"), 0o644)
	if _, err := Load(f); !errors.Is(err, ErrNotIdentified) {
		t.Errorf("pid file without a start time: %v, want ErrNotIdentified", err)
	}
	os.WriteFile(f+StartSuffix, []byte("x"), 0o644)
	if _, err := Load(f); err == nil {
		t.Error("bad start file: no error")
	}
}

func TestStartTimeOfMissingProcess(t *testing.T) {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Skip(err)
	}
	if _, err := StartTime(c.Process.Pid); !errors.Is(err, ErrExited) {
		t.Errorf("start time of a reaped process: %v, want ErrExited", err)
	}
	self, err := StartTime(os.Getpid())
	if err != nil || self == 0 {
		t.Errorf("own start time: %d, %v", self, err)
	}
}
