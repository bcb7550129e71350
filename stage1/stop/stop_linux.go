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

// Main runs `stop [--force] UUID` in the pod directory (the working
// directory) and returns the exit code.
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	force := fs.Bool("force", false, "SIGKILL instead of SIGTERM")
	uuid, dir, err := podcfg.ParseEntrypointArgs(fs, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 stop: %v\n", err)
		return 254
	}
	if err := Stop(ctx, dir, *force); err != nil {
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

// forceWait is how long stop --force waits for the pod's process to die
// before it records the apps' exit.
const forceWait = 5 * time.Second
