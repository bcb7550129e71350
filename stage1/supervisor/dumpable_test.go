package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMainIsNotDumpable runs Main in a child process (this test binary
// again), with no arguments so that it returns at once, and reads the
// child's dumpable flag afterwards: Main must have cleared it, so that
// nothing in the pod can reach the supervisor through /proc/1/exe, mem or
// ptrace (CVE-2019-5736). The flag is not visible from outside the process
// (/proc/PID/status does not show it, and root on the host may read a
// non-dumpable process's links anyway), so the child reports it itself.
func TestMainIsNotDumpable(t *testing.T) {
	if os.Getenv("SUPERVISOR_TEST_MAIN") == "1" {
		code := Main(context.Background(), nil)
		d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		fmt.Printf("exit %d, dumpable %d, %v\n", code, d, err)
		os.Exit(0)
	}
	before, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil || before != 1 {
		t.Fatalf("this test process: dumpable %d, %v; want 1 (the child inherits it)", before, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainIsNotDumpable$")
	cmd.Env = append(os.Environ(), "SUPERVISOR_TEST_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(string(out)); got != "exit 254, dumpable 0, <nil>" {
		t.Errorf("Main left the process %q, want \"exit 254, dumpable 0, <nil>\" (stderr %q)", got, stderr.String())
	}
}
