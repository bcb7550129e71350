package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// bench is one run of the benchmark and everything it must clean up.
type bench struct {
	cfg *config
	out io.Writer
	// rkts are the rkt data directories: "rkt" (image fetched with
	// --insecure-options=image) and, with -key, "rkt-signed".
	rkts []*rktDir
	// runcRoot is runc's private state directory; bundle the OCI bundle.
	runcRoot, bundle string
	// podman holds podman's global flags (private storage), podmanRun
	// the run flags that work on this host.
	podman, podmanRun []string

	mu sync.Mutex
	// pods are the idle pods started and not yet known to have exited.
	pods []*pod
	// cgroups are the cgroup directories pods recorded, collected before
	// each gc, so that what gc leaves behind is found and removed.
	cgroups map[string]bool
}

// rktDir is one rkt data directory and how rkt is run on it.
type rktDir struct {
	name, dir string
	flags     []string // global flags: --dir, config dirs, insecure options
}

func newBench(c *config, out io.Writer) *bench {
	return &bench{cfg: c, out: out, cgroups: map[string]bool{}}
}

func (b *bench) printf(format string, args ...any) {
	fmt.Fprintf(b.out, format, args...)
}

// header prints what the figures were measured on.
func (b *bench) header(ctx context.Context) {
	b.printf("# rkt start benchmark\n\n")
	b.printf("- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	b.printf("- kernel: %s, %s, %d CPUs\n", strings.TrimSpace(string(rel)), cpuModel(), runtime.NumCPU())
	b.printf("- cgroups: %s\n", cgroupLayout())
	b.printf("- load average at the start: %s (the host may be shared: see the spread of the figures)\n", loadavg())
	v, err := command(ctx, b.cfg.rkt, "version")
	b.printf("- rkt: %s%s\n", firstLine(v), orErr(err))
	for _, t := range []string{"runc", "podman", "crun"} {
		if p, err := exec.LookPath(t); err == nil {
			v, err := command(ctx, p, "--version")
			b.printf("- %s: %s%s\n", t, firstLine(v), orErr(err))
		} else {
			b.printf("- %s: not installed\n", t)
		}
	}
	b.printf("\n")
}

func orErr(err error) string {
	if err != nil {
		return " (failed: " + err.Error() + ")"
	}
	return ""
}

// rktCmd returns the argument list of rkt on d.
func (b *bench) rktCmd(d *rktDir, args ...string) []string {
	return append(append([]string{b.cfg.rkt}, d.flags...), args...)
}

// setupRkt makes the data directories and fetches the image into each:
// once with --insecure-options=image, and once verified against the
// trusted key.
func (b *bench) setupRkt(ctx context.Context) error {
	etc := filepath.Join(b.cfg.work, "rkt-config")
	for _, d := range []string{"local", "system", "user"} {
		if err := os.MkdirAll(filepath.Join(etc, d), 0o755); err != nil {
			return fmt.Errorf("make rkt's config directories: %w", err)
		}
	}
	cfgFlags := []string{
		"--local-config=" + filepath.Join(etc, "local"),
		"--system-config=" + filepath.Join(etc, "system"),
		"--user-config=" + filepath.Join(etc, "user"),
	}
	names := []string{"rkt"}
	if !b.cfg.skip["signed"] {
		names = append(names, "rkt-signed")
	}
	for _, name := range names {
		d := &rktDir{name: name, dir: filepath.Join(b.cfg.work, name+"-data")}
		d.flags = append([]string{"--dir=" + d.dir}, cfgFlags...)
		if name == "rkt" {
			d.flags = append(d.flags, "--insecure-options=image")
		} else {
			a := b.rktCmd(d, "trust", "--prefix", imageName, "--skip-fingerprint-review", b.cfg.key)
			if _, err := command(ctx, a[0], a[1:]...); err != nil {
				return fmt.Errorf("trust the signing key: %w", err)
			}
		}
		b.rkts = append(b.rkts, d)
		a := b.rktCmd(d, "fetch", b.cfg.aci)
		if _, err := command(ctx, a[0], a[1:]...); err != nil {
			return fmt.Errorf("%s: fetch the image: %w", d.name, err)
		}
	}
	return nil
}

// rktTools returns the timed rkt commands, one per data directory.
func (b *bench) rktTools() []*tool {
	var ts []*tool
	for _, d := range b.rkts {
		argv := b.rktCmd(d, "run", "--net=none", imageName)
		ts = append(ts, &tool{name: d.name, argv: func(int) []string { return argv }})
	}
	return ts
}

// gc collects the exited pods of every rkt directory, after noting the
// cgroups the pods recorded (for cleanup).
func (b *bench) gc(ctx context.Context) error {
	var errs []error
	for _, d := range b.rkts {
		b.noteCgroups(d)
		a := b.rktCmd(d, "gc", "--grace-period=0s")
		if _, err := command(ctx, a[0], a[1:]...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// noteCgroups records the cgroup directories of every pod of d.
func (b *bench) noteCgroups(d *rktDir) {
	files, _ := filepath.Glob(filepath.Join(d.dir, "pods", "*", "*", cgroupsFile))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Fields(string(data)) {
			b.cgroups[l] = true
		}
	}
}

// setupRunc makes an OCI bundle of the image's rootfs running /bin/true.
func (b *bench) setupRunc(ctx context.Context) *tool {
	t := &tool{name: "runc"}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.err = fmt.Errorf("runc is not installed (apt-get install runc): %w", err)
		return t
	}
	b.runcRoot = filepath.Join(b.cfg.work, "runc-state")
	b.bundle = filepath.Join(b.cfg.work, "bundle")
	if err := os.MkdirAll(b.bundle, 0o755); err != nil {
		t.err = err
		return t
	}
	if _, err := command(ctx, "tar", "-xf", b.cfg.aci, "-C", b.bundle, "rootfs"); err != nil {
		t.err = fmt.Errorf("unpack the image into the bundle: %w", err)
		return t
	}
	if _, err := command(ctx, runc, "spec", "--bundle", b.bundle); err != nil {
		t.err = err
		return t
	}
	if err := editSpec(filepath.Join(b.bundle, "config.json")); err != nil {
		t.err = err
		return t
	}
	root, bundle := b.runcRoot, b.bundle
	t.argv = func(round int) []string {
		return []string{runc, "--root", root, "run", "--bundle", bundle, fmt.Sprintf("startbench-%d", round)}
	}
	t.after = func(ctx context.Context, round int) {
		command(ctx, runc, "--root", root, "delete", "--force", fmt.Sprintf("startbench-%d", round))
	}
	return t
}

// editSpec makes runc's default spec run /bin/true without a terminal.
// Everything else (its network namespace included) stays as runc made it.
func editSpec(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the runc spec: %w", err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("parse the runc spec %s: %w", path, err)
	}
	proc, ok := spec["process"].(map[string]any)
	if !ok {
		return fmt.Errorf("runc spec %s has no process object", path)
	}
	proc["args"] = []string{"/bin/true"}
	proc["terminal"] = false
	if data, err = json.MarshalIndent(spec, "", "\t"); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// setupPodman imports the image's rootfs into a private podman store and
// finds run flags that work here, reporting those that do not.
func (b *bench) setupPodman(ctx context.Context) *tool {
	t := &tool{name: "podman"}
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.err = fmt.Errorf("podman is not installed (apt-get install podman): %w", err)
		return t
	}
	pd := filepath.Join(b.cfg.work, "podman")
	if b.cfg.podmanDir != "" {
		pd = b.cfg.podmanDir
	}
	b.podman = []string{podman, "--root", filepath.Join(pd, "root"), "--runroot", filepath.Join(pd, "run"),
		"--tmpdir", filepath.Join(pd, "tmp")}
	tarball := filepath.Join(b.cfg.work, "rootfs.tar")
	if _, err := command(ctx, "sh", "-c", `mkdir -p "$1" && tar -xf "$2" -C "$1" rootfs && tar -C "$1/rootfs" -cf "$3" .`,
		"sh", filepath.Join(pd, "unpack"), b.cfg.aci, tarball); err != nil {
		t.err = fmt.Errorf("make a rootfs tarball for podman: %w", err)
		return t
	}
	a := append(append([]string(nil), b.podman...), "import", tarball, "bench-true")
	if _, err := command(ctx, a[0], a[1:]...); err != nil {
		t.err = fmt.Errorf("podman import: %w", err)
		return t
	}
	base := []string{"--runtime", "runc", "--ulimit", "nofile=1024:1024"}
	probes := []struct {
		desc   string
		flags  []string
		usable bool
	}{
		{"podman's defaults", nil, false},
		{"--runtime crun", []string{"--runtime", "crun"}, false},
		{"--runtime runc --ulimit nofile=1024:1024", base, true},
		{"--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024", append(base, "--ulimit", "nproc=1024:1024"), true},
	}
	for _, p := range probes {
		if p.desc == "--runtime crun" {
			if _, err := exec.LookPath("crun"); err != nil {
				continue
			}
		}
		a := b.podmanArgv(p.flags)
		_, err := command(ctx, a[0], a[1:]...)
		res := "works"
		if err != nil {
			res = "fails: " + err.Error()
		}
		t.notes = append(t.notes, fmt.Sprintf("podman run with %s: %s", p.desc, res))
		if err == nil && p.usable && b.podmanRun == nil {
			b.podmanRun = p.flags
		}
	}
	if b.podmanRun == nil {
		t.err = errors.New("no podman run variant works here (see the notes)")
		return t
	}
	argv := b.podmanArgv(b.podmanRun)
	t.argv = func(int) []string { return argv }
	return t
}

// podmanArgv is the podman run command line with the extra run flags.
func (b *bench) podmanArgv(flags []string) []string {
	a := append(append([]string(nil), b.podman...), "run", "--rm", "--network=none")
	return append(append(a, flags...), "bench-true", "/bin/true")
}

// cleanup stops the pods still running, collects every pod, removes the
// cgroups gc left, podman's store, the mounts under the work directory and
// everything the benchmark created there. It carries on after errors.
func (b *bench) cleanup(ctx context.Context) error {
	var errs []error
	b.mu.Lock()
	pods := b.pods
	b.pods = nil
	b.mu.Unlock()
	stopPods(ctx, pods, 10*time.Second)
	if err := b.gc(ctx); err != nil {
		errs = append(errs, err)
	}
	if n, err := b.removeCgroups(); n > 0 || err != nil {
		b.printf("\ncleanup: rkt gc left %d cgroup directories; the benchmark removed them (%v)\n", n, err)
		errs = append(errs, err)
	}
	if len(b.podman) > 0 {
		// No event is logged into the tmpdir being removed; what reset
		// leaves is unmounted and removed below anyway.
		a := append(append([]string(nil), b.podman...), "--events-backend", "none", "system", "reset", "--force")
		if _, err := command(ctx, a[0], a[1:]...); err != nil {
			time.Sleep(200 * time.Millisecond)
			if _, err := command(ctx, a[0], a[1:]...); err != nil {
				b.printf("\ncleanup: podman system reset of the private store failed (its directory is removed anyway): %v\n", err)
			}
		}
	}
	if err := unmountUnder(b.cfg.work); err != nil {
		errs = append(errs, err)
	}
	created := []string{filepath.Join(b.cfg.work, "rkt-config"), filepath.Join(b.cfg.work, "podman"), filepath.Join(b.cfg.work, "pods"),
		filepath.Join(b.cfg.work, "rootfs.tar"), b.bundle, b.runcRoot}
	for _, d := range b.rkts {
		created = append(created, d.dir)
	}
	for _, p := range created {
		if p == "" {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes the recorded pod cgroups that still exist, deepest
// first, and returns how many there were.
func (b *bench) removeCgroups() (int, error) {
	b.mu.Lock()
	var left []string
	for d := range b.cgroups {
		if _, err := os.Stat(d); err == nil {
			left = append(left, d)
		}
	}
	b.mu.Unlock()
	sort.Slice(left, func(i, j int) bool { return len(left[i]) > len(left[j]) })
	var errs []error
	for _, d := range left {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return len(left), errors.Join(errs...)
}

// leftCgroups counts the recorded cgroup directories that still exist.
func (b *bench) leftCgroups() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for d := range b.cgroups {
		if _, err := os.Stat(d); err == nil {
			n++
		}
	}
	return n
}
