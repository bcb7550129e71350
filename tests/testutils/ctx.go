package testutils

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/testutil"
)

// RunTimeout bounds each Run of the rkt binary.
const RunTimeout = 60 * time.Second

// RktCtx runs the built rkt binary with its own fresh data directory and
// config directories, removed (after unmounting anything left mounted below
// them) when the test ends.
type RktCtx struct {
	Bin, Dir, LocalConfig, SystemConfig, UserConfig string

	t    testing.TB
	base string // holds the four directories
}

// Result is the outcome of one rkt command.
type Result struct {
	Stdout, Stderr string
	Exit           int // -1 when the command was killed (timeout)
}

// rktBinary returns $RKT_BIN or <repo root>/build/bin/rkt.
func rktBinary() (string, error) {
	if bin := os.Getenv("RKT_BIN"); bin != "" {
		return bin, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "build", "bin", "rkt"), nil
}

// NewRktCtx makes a context with fresh directories and registers their
// cleanup with t.Cleanup. The binary is $RKT_BIN or build/bin/rkt of the
// checkout; the test fails at once if it is missing.
func NewRktCtx(t testing.TB) *RktCtx {
	t.Helper()
	bin, err := rktBinary()
	if err != nil {
		t.Fatalf("find rkt binary: %v (set RKT_BIN or run `make` first)", err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("rkt binary %s is missing or not executable: run `make` first (or set RKT_BIN)", bin)
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	base, err := os.MkdirTemp("", "rkt-test-")
	if err != nil {
		t.Fatalf("create test directory: %v", err)
	}
	// Mount points in /proc/self/mountinfo are resolved paths.
	if real, err := filepath.EvalSymlinks(base); err == nil {
		base = real
	}
	c := &RktCtx{
		Bin:          bin,
		Dir:          filepath.Join(base, "data"),
		LocalConfig:  filepath.Join(base, "local"),
		SystemConfig: filepath.Join(base, "system"),
		UserConfig:   filepath.Join(base, "user"),
		t:            t,
		base:         base,
	}
	t.Cleanup(c.cleanup)
	for _, d := range []string{c.Dir, c.LocalConfig, c.SystemConfig, c.UserConfig} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("create test directory: %v", err)
		}
	}
	return c
}

// cleanup unmounts what is left below the context's directories, deepest
// first, then removes them.
func (c *RktCtx) cleanup() {
	if err := unmountBelow(c.base); err != nil {
		c.t.Errorf("clean up %s: %v", c.base, err)
	}
	if err := os.RemoveAll(c.base); err != nil {
		c.t.Errorf("clean up %s: %v", c.base, err)
	}
}

// GlobalArgs are the flags that point rkt at the context's directories.
func (c *RktCtx) GlobalArgs() []string {
	return []string{
		"--dir=" + c.Dir,
		"--local-config=" + c.LocalConfig,
		"--system-config=" + c.SystemConfig,
		"--user-config=" + c.UserConfig,
	}
}

// Cmd returns an unstarted rkt command with the global directory flags
// before args. It runs in its own process group; when ctx ends, the whole
// group (rkt and whatever it started there) is killed.
func (c *RktCtx) Cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Bin, append(c.GlobalArgs(), args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Setpgid made the child's pid its process group id.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// Do not hang on pipes kept open by processes that outlive rkt.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs rkt with args (after the global flags) and returns its output
// and exit code. It gives up after RunTimeout; the test fails if rkt cannot
// be started at all.
func (c *RktCtx) Run(args ...string) Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := c.Cmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.Exit = -1
		r.Stderr += fmt.Sprintf("\n[testutils: rkt %s killed after %s]", strings.Join(args, " "), RunTimeout)
	case errors.As(err, &exitErr):
		r.Exit = exitErr.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		r.Exit = cmd.ProcessState.ExitCode()
	default:
		c.t.Fatalf("run %s %s: %v", c.Bin, strings.Join(args, " "), err)
	}
	return r
}

func (c *RktCtx) describe(args []string, r Result) string {
	return fmt.Sprintf("rkt %s: exit %d\n--- stdout:\n%s\n--- stderr:\n%s",
		strings.Join(args, " "), r.Exit, r.Stdout, r.Stderr)
}

// MustRun runs rkt and returns its stdout; the test fails (with stdout and
// stderr) on a non-zero exit.
func (c *RktCtx) MustRun(args ...string) string {
	c.t.Helper()
	r := c.Run(args...)
	if r.Exit != 0 {
		c.t.Fatalf("%s", c.describe(args, r))
	}
	return r.Stdout
}

// MustFail runs rkt and fails the test unless it exits with wantExit and
// its stderr contains wantStderr.
func (c *RktCtx) MustFail(wantExit int, wantStderr string, args ...string) Result {
	c.t.Helper()
	r := c.Run(args...)
	if r.Exit != wantExit || !strings.Contains(r.Stderr, wantStderr) {
		c.t.Fatalf("want exit %d and stderr containing %q, got %s", wantExit, wantStderr, c.describe(args, r))
	}
	return r
}

// RequireRoot is pkg/testutil's: the test runs only as root with the
// root tests switched on.
func RequireRoot(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
}
