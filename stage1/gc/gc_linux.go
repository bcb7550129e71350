// Package gc is the stage1 gc entrypoint, shared by the default and fly
// flavors: it removes the cgroups the pod's stage1 created (in every
// hierarchy) and lazily unmounts whatever is still mounted below the pod
// directory, deepest first. It is idempotent: a second run finds nothing
// to do.
package gc

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/stage1/podcfg"
)

// Main runs `gc [--debug] [--local-config=DIR] UUID` in the pod directory
// (the working directory) and returns the exit code.
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	debug := fs.Bool("debug", false, "print what gc does")
	fs.String("local-config", "", "rkt's local configuration directory (unused)")
	if err := fs.Parse(args); err != nil {
		return 254
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "stage1 gc: want exactly one argument, the pod UUID; got %q\n", fs.Args())
		return 254
	}
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 gc: %v\n", err)
		return 254
	}
	logf := func(string, ...any) {}
	if *debug {
		logf = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "stage1 gc: "+format+"\n", a...) }
	}
	if err := Collect(ctx, dir, logf); err != nil {
		fmt.Fprintf(os.Stderr, "stage1 gc: pod %s: %v\n", fs.Arg(0), err)
		return 254
	}
	return 0
}

// Collect cleans up after the pod in podDir.
func Collect(ctx context.Context, podDir string, logf func(string, ...any)) error {
	var errs []error
	if err := Unmount(podDir, logf); err != nil {
		errs = append(errs, err)
	}
	data, err := os.ReadFile(filepath.Join(podDir, podcfg.CgroupsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if dirs := strings.Fields(string(data)); len(dirs) > 0 {
		logf("removing %d cgroups", len(dirs))
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := cgroup.Remove(ctx, dirs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Unmount detaches every mount at or below dir, deepest first.
func Unmount(dir string, logf func(string, ...any)) error {
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		dir = real
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read the mount table: %w", err)
	}
	defer f.Close()
	points, err := mountsBelow(f, dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		logf("unmounting %s", p)
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountsBelow lists the mount points at or below dir from a mountinfo
// table, deepest (then last mounted) first.
func mountsBelow(r io.Reader, dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		p := unescape(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	// Stable on reversed input: later mounts first among equals.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// unescape undoes mountinfo's octal escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v, ok := byte(0), true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
