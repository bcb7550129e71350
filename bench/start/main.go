// Command start measures how long `rkt run` takes to start and finish a
// pod of a prefetched image running /bin/true, next to `runc run` on an
// equivalent OCI bundle and `podman run`, in interleaved rounds; where
// rkt's time goes (the phase lines of `rkt --debug run`); and what idle
// pods cost in memory, for one pod and for many, with the time `rkt gc`
// takes to collect them.
//
// It is Linux-only, runs as root and is driven by bench/start/run.sh, which builds rkt
// and its default stage1 image into a private directory, makes the test
// image and a signing key, and passes them here:
//
//	start -rkt RKT -aci IMAGE.aci [-key PUBKEY.asc] -work DIR [flags]
//
// IMAGE.aci must be named bench.rkt/true and run /bin/true; with -key,
// IMAGE.aci.asc is its detached signature and a second rkt data directory
// fetches and runs it with signature verification on. Everything the
// benchmark creates lives under DIR (which must exist) and is removed at
// the end, pods, mounts and cgroups included, also after a failure or
// an interrupt. Results are printed as Markdown tables on stdout.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// imageName is the name of the benchmark image (tests/mkaci --name).
const imageName = "bench.rkt/true"

// config is the command line.
type config struct {
	rkt, aci, key, work string
	// podmanDir holds podman's storage ("": <work>/podman).
	podmanDir          string
	rounds, warmup     int
	gcEvery, debugRuns int
	pods, parallel     int
	settle             time.Duration
	skip               map[string]bool
}

// skippable names the parts of the benchmark -skip accepts.
var skippable = []string{"signed", "runc", "podman", "breakdown", "overhead", "pods"}

func parseFlags(args []string, errOut io.Writer) (*config, error) {
	c := &config{skip: map[string]bool{}}
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&c.rkt, "rkt", "", "rkt binary, with stage1-default.aci beside it (required)")
	fs.StringVar(&c.aci, "aci", "", "the bench.rkt/true image running /bin/true (required)")
	fs.StringVar(&c.key, "key", "", "armored public key that signed ACI (ACI.asc); enables the signed variant")
	fs.StringVar(&c.work, "work", "", "existing directory for everything the benchmark creates (required)")
	fs.StringVar(&c.podmanDir, "podman-dir", "", "existing directory for podman's storage (default: <work>/podman)")
	fs.IntVar(&c.rounds, "rounds", 30, "timed rounds per tool (at least 20 for the report)")
	fs.IntVar(&c.warmup, "warmup", 3, "untimed rounds before the timed ones")
	fs.IntVar(&c.gcEvery, "gc-every", 10, "run rkt gc (untimed) after this many rounds")
	fs.IntVar(&c.debugRuns, "debug-runs", 9, "rkt --debug runs per variant for the phase breakdown")
	fs.IntVar(&c.pods, "pods", 100, "idle pods started together for the memory and gc figures")
	fs.IntVar(&c.parallel, "parallel", 4, "how many of those pods are being started at a time")
	fs.DurationVar(&c.settle, "settle", time.Second, "wait after pods are ready before measuring memory")
	skip := fs.String("skip", "", "comma-separated parts to leave out: "+strings.Join(skippable, ","))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every input is a flag", fs.Args())
	}
	if c.rkt == "" || c.aci == "" || c.work == "" {
		return nil, errors.New("-rkt, -aci and -work are required (bench/start/run.sh passes them)")
	}
	if c.rounds < 1 || c.warmup < 0 || c.gcEvery < 1 || c.debugRuns < 0 || c.pods < 0 || c.parallel < 1 {
		return nil, errors.New("-rounds, -gc-every and -parallel must be positive; -warmup, -debug-runs and -pods not negative")
	}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		known := false
		for _, k := range skippable {
			known = known || k == s
		}
		if !known {
			return nil, fmt.Errorf("-skip %q: unknown part (known: %s)", s, strings.Join(skippable, ","))
		}
		c.skip[s] = true
	}
	if c.key == "" {
		c.skip["signed"] = true
	}
	var err error
	for _, p := range []*string{&c.rkt, &c.aci, &c.key, &c.work, &c.podmanDir} {
		if *p == "" {
			continue
		}
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
		if _, err := os.Stat(*p); err != nil {
			return nil, fmt.Errorf("check the flags: %w", err)
		}
	}
	return c, nil
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "start: %v\n", err)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "start: pods need root: run bench/start/run.sh as root")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := newBench(c, os.Stdout)
	err = b.run(ctx)
	if cerr := b.cleanup(context.Background()); cerr != nil {
		fmt.Fprintf(os.Stderr, "start: cleanup: %v\n", cerr)
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "start: %v\n", err)
		os.Exit(1)
	}
}

// run runs every part of the benchmark that is not skipped. A tool that
// is missing or fails is reported and left out; only a failure of rkt's
// own setup stops the benchmark.
func (b *bench) run(ctx context.Context) error {
	b.header(ctx)
	if err := b.setupRkt(ctx); err != nil {
		return err
	}
	tools := b.rktTools()
	if !b.cfg.skip["runc"] {
		tools = append(tools, b.setupRunc(ctx))
	}
	if !b.cfg.skip["podman"] {
		tools = append(tools, b.setupPodman(ctx))
	}
	b.probe(ctx, tools)
	if err := b.latency(ctx, tools); err != nil {
		return err
	}
	if !b.cfg.skip["breakdown"] && b.cfg.debugRuns > 0 {
		if err := b.breakdown(ctx); err != nil {
			return err
		}
	}
	if !b.cfg.skip["overhead"] {
		if err := b.idleOverhead(ctx); err != nil {
			return err
		}
	}
	if !b.cfg.skip["pods"] && b.cfg.pods > 0 {
		if err := b.manyPods(ctx); err != nil {
			return err
		}
	}
	return nil
}

// command runs name with args and returns its output; the error carries
// the command line and the end of its output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = &out, &out
	c.WaitDelay = 5 * time.Second
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(out.String()))
	}
	return out.String(), nil
}

// tail returns the last non-empty lines of command output, for errors.
func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " / ")
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// execCommand is exec.CommandContext for an argument list.
func execCommand(ctx context.Context, argv []string) *exec.Cmd {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.WaitDelay = 5 * time.Second
	return c
}
