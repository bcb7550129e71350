// Package mounts finds and lazily removes the mounts at or below a
// directory: what rkt gc and stage1 gc do to a pod directory before
// deleting it.
package mounts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Below lists the mount points at or below dir in a mountinfo table, in
// the order they must be unmounted: deepest first and, among mounts
// stacked on one path, the most recent first.
func Below(r io.Reader, dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	infos, err := mountinfo.GetMountsFromReader(r, func(i *mountinfo.Info) (skip, stop bool) {
		return !(i.Mountpoint == dir || strings.HasPrefix(i.Mountpoint, dir+"/")), false
	})
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	out := make([]string, len(infos))
	for i, in := range infos {
		out[len(infos)-1-i] = in.Mountpoint // later mounts first among equals
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// UnmountBelow lazily (MNT_DETACH) unmounts everything at or below dir,
// deepest first, in a few passes for mounts that propagation brings back.
// It fails if mounts are still there after the last pass. logf, if not
// nil, is told each unmount.
func UnmountBelow(dir string, logf func(string, ...any)) error {
	var errs []error
	for pass := 0; ; pass++ {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("read the mount table: %w", err)
		}
		points, err := Below(f, dir)
		f.Close()
		if err != nil {
			return err
		}
		if len(points) == 0 {
			return nil
		}
		if pass == 3 {
			if len(errs) == 0 {
				errs = append(errs, errors.New("mounts keep reappearing (mount propagation from elsewhere?)"))
			}
			return fmt.Errorf("%d mounts left below %s, such as %s: %w", len(points), dir, points[0], errors.Join(errs...))
		}
		errs = errs[:0]
		for _, p := range points {
			if logf != nil {
				logf("unmounting %s", p)
			}
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			}
		}
	}
}
