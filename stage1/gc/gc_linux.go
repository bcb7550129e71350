// Package gc is the stage1 gc entrypoint, shared by the default and fly
// flavors: it tears down the pod's CNI networks (CNI DEL, also when the
// pod was killed and its network namespace is gone), removes the cgroups
// the pod's stage1 created (in every hierarchy) and lazily unmounts
// whatever is still mounted below the pod directory, deepest first. It is
// idempotent: a second run finds nothing to do.
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

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/stage1/podcfg"
)

// Main runs `gc [--debug] [--local-config=DIR] UUID` in the pod directory
// (the working directory) and returns the exit code.
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	debug := fs.Bool("debug", false, "print what gc does")
	localConfig := fs.String("local-config", podcfg.DefaultLocalConfig, "rkt's local configuration directory (its net.d has the administrator's networks and plugins)")
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
	if err := Collect(ctx, dir, Options{UUID: fs.Arg(0), LocalConfig: *localConfig, Logf: logf}); err != nil {
		fmt.Fprintf(os.Stderr, "stage1 gc: pod %s: %v\n", fs.Arg(0), err)
		return 254
	}
	return 0
}

// Options are gc's arguments.
type Options struct {
	// UUID is the pod's; "" means the pod directory's name.
	UUID string
	// LocalConfig is rkt's local configuration directory
	// (--local-config), where the pod's networks may have come from.
	LocalConfig string
	// Logf, if set, is told what gc does.
	Logf func(format string, args ...any)
}

// Collect cleans up after the pod in podDir.
func Collect(ctx context.Context, podDir string, opts Options) error {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	uuid := opts.UUID
	if uuid == "" {
		uuid = filepath.Base(podDir)
	}
	var errs []error
	if err := teardownNetworks(ctx, podDir, uuid, opts.LocalConfig, logf); err != nil {
		errs = append(errs, err)
	}
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

// teardownNetworks runs CNI DEL for the networks in the pod's
// net-info.json (networking.Teardown), unless a previous run (or the run
// entrypoint, when the pod exited) already did it all.
func teardownNetworks(ctx context.Context, podDir, uuid, localConfig string, logf func(string, ...any)) error {
	nis, err := networking.LoadNetInfo(podDir)
	if err != nil || len(nis) == 0 {
		return err
	}
	if _, err := os.Stat(filepath.Join(podDir, podcfg.NetDownFile)); err == nil {
		logf("networks already torn down")
		return nil
	}
	cfg, err := podcfg.NetConfig(podDir, localConfig, logf)
	if err != nil {
		return err
	}
	if err := networking.Teardown(ctx, uuid, podDir, cfg); err != nil {
		return err
	}
	return podcfg.MarkNetDown(podDir)
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
