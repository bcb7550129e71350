package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Remove deletes the cgroup directories dirs, deepest first. Processes
// still in one of them are killed with SIGKILL first (a pod killed
// abruptly can leave some for a moment). Missing directories are fine, so
// Remove is idempotent. It gives up on a cgroup that stays busy when ctx
// ends.
func Remove(ctx context.Context, dirs []string) error {
	sorted := append([]string(nil), dirs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return strings.Count(sorted[i], "/") > strings.Count(sorted[j], "/")
	})
	var errs []error
	for _, d := range sorted {
		if err := removeOne(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeOne(ctx context.Context, dir string) error {
	for delay := time.Millisecond; ; delay *= 2 {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			// A fake cgroupfs in tests holds regular files: remove them.
			if errors.Is(err, syscall.ENOTEMPTY) && !isCgroupfs(dir) {
				return os.RemoveAll(dir)
			}
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		killAll(dir)
		if delay > 200*time.Millisecond {
			delay = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove cgroup %s: processes are still in it (see %s/cgroup.procs): %w", dir, dir, err)
		case <-time.After(delay):
		}
	}
}

// isCgroupfs reports whether dir is on a cgroup (v1 or v2) filesystem.
func isCgroupfs(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	const cgroupMagic, cgroup2Magic = 0x27e0eb, 0x63677270
	return st.Type == cgroupMagic || st.Type == cgroup2Magic
}

// killAll SIGKILLs every process of the cgroup at dir.
func killAll(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
