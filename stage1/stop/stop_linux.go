// Package stop is the stage1 stop entrypoint, shared by the default and
// fly flavors: SIGTERM to the pod's process 1 (the supervisor, which
// forwards it to the apps and SIGKILLs them after the grace period), or
// SIGKILL with --force (the kernel then kills every process of the pod's
// PID namespace).
package stop

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

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
// not an error.
func Stop(ctx context.Context, podDir string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(podDir, podcfg.PidFile))
	if err != nil {
		return fmt.Errorf("the pod has no pid file (was it started?): %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("bad pid file content %q", data)
	}
	// The pid may have been reused since the pod exited: the pod's
	// process runs in the pod directory.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || !samePath(cwd, podDir) {
		return nil
	}
	sig := unix.SIGTERM
	if force {
		sig = unix.SIGKILL
	}
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return nil
}

func samePath(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}
