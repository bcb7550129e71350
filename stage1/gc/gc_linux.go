// Package gc is the stage1 gc entrypoint, shared by the default and fly
// flavors: it tears down the pod's CNI networks (CNI DEL, also when the
// pod was killed and its network namespace is gone), removes the cgroups
// the pod's stage1 created (in every hierarchy) and lazily unmounts
// whatever is still mounted below the pod directory, deepest first. It is
// idempotent: a second run finds nothing to do.
package gc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/mounts"
	"github.com/rkt/rkt/stage1/podcfg"
)

// Main runs `gc [--debug] [--local-config=DIR] UUID` in the pod directory
// (the working directory) and returns the exit code.
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	debug := fs.Bool("debug", false, "print what gc does")
	localConfig := fs.String("local-config", podcfg.DefaultLocalConfig, "rkt's local configuration directory (its net.d has the administrator's networks and plugins)")
	uuid, dir, err := podcfg.ParseEntrypointArgs(fs, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 gc: %v\n", err)
		return 254
	}
	logf := func(string, ...any) {}
	if *debug {
		logf = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "stage1 gc: "+format+"\n", a...) }
	}
	if err := Collect(ctx, dir, Options{UUID: uuid, LocalConfig: *localConfig, Logf: logf}); err != nil {
		fmt.Fprintf(os.Stderr, "stage1 gc: pod %s: %v\n", uuid, err)
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
	if err := TeardownNetworks(ctx, podDir, uuid, opts.LocalConfig, logf); err != nil {
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

// TeardownNetworks runs CNI DEL for the networks in the pod's
// net-info.json (networking.Teardown), unless a previous run (or the run
// entrypoint, when the pod exited) already did it all.
func TeardownNetworks(ctx context.Context, podDir, uuid, localConfig string, logf func(string, ...any)) error {
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
	return mounts.UnmountBelow(dir, logf)
}
