// Package stop is the stage1 stop entrypoint, shared by the default and
// fly flavors: SIGTERM to the pod's process 1 (the supervisor, which
// forwards it to the apps and SIGKILLs them after the grace period), or
// SIGKILL with --force (the kernel then kills every process of the pod's
// PID namespace). The process is the one recorded in the pod's pid file
// with its start time (pkg/proc), so the check does not depend on the
// root or mount namespace rkt stop runs in.
package stop

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/stage1/podcfg"
)

// Main runs `stop [--force] [--timeout=DUR] UUID` in the pod directory
// (the working directory) and returns the exit code.
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	force := fs.Bool("force", false, "SIGKILL instead of SIGTERM")
	timeout := fs.Duration("timeout", 0, "grace period between SIGTERM and SIGKILL for this stop")
	uuid, dir, err := podcfg.ParseEntrypointArgs(fs, args)
	if err == nil && *timeout < 0 {
		err = fmt.Errorf("--timeout=%v: want a positive duration", *timeout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 stop: %v\n", err)
		return 254
	}
	if *timeout > 0 && !*force {
		if err := writeTimeout(dir, *timeout); err != nil {
			fmt.Fprintf(os.Stderr, "stage1 stop: pod %s: %v\n", uuid, err)
			return 254
		}
	}
	if err := Stop(ctx, dir, *force); err != nil {
		// Not signalled: a later stop must not inherit this timeout.
		os.Remove(filepath.Join(dir, podcfg.StopTimeoutFile))
		fmt.Fprintf(os.Stderr, "stage1 stop: pod %s: %v\n", uuid, err)
		return 254
	}
	return 0
}

// Stop signals the pod in podDir. A pod whose process is already gone is
// not an error; a pid file whose process cannot be identified as the
// pod's (its pid now names another process, or no start time was
// recorded) is, and nothing is signalled then.
func Stop(ctx context.Context, podDir string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := proc.Load(filepath.Join(podDir, podcfg.PidFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the pod has no pid file (was it started?): %w", err)
	}
	if err != nil {
		return fmt.Errorf("find the pod's process: %w", err)
	}
	h, err := p.Open()
	if errors.Is(err, proc.ErrExited) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("not signalled: %w", err)
	}
	defer h.Close()
	sig := unix.SIGTERM
	if force {
		sig = unix.SIGKILL
	}
	if err := h.Signal(sig); err != nil && !errors.Is(err, proc.ErrExited) {
		return err
	}
	if force && h.WaitExit(forceWait) {
		// The apps died with the pod's process 1 and nobody recorded how:
		// they were SIGKILLed (137), which rkt status shows. (The default
		// flavor's host-side process does the same when it sees its
		// supervisor die; the fly flavor has none left.)
		exitstatus.FillKilled(filepath.Join(podDir, podcfg.StatusDir))
	}
	return nil
}

// writeTimeout records the grace period of this stop for the supervisor
// (podcfg.StopTimeoutFile), which reads it on the SIGTERM that follows.
func writeTimeout(podDir string, d time.Duration) error {
	p := filepath.Join(podDir, podcfg.StopTimeoutFile)
	tmp := p + ".tmp"
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("record the stop timeout: %w", err)
	}
	if err := os.WriteFile(tmp, []byte(d.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the stop timeout: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record the stop timeout: %w", err)
	}
	return nil
}

// forceWait is how long stop --force waits for the pod's process to die
// before it records the apps' exit.
const forceWait = 5 * time.Second
