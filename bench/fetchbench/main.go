// Command fetchbench measures how fast `rkt fetch` imports a large local
// ACI (decompress, hash, copy into the store, render the tree, make it
// durable) against a baseline doing the same kind of work with standard
// tools on the same file: `sha512sum FILE && tar -x -f FILE`.
//
// It writes a deterministic ~200 MB image (plain and gzip), then runs both
// contenders interleaved for a number of rounds, each on a fresh output
// directory, and prints the median wall times, rates over the uncompressed
// size and the ratio rkt rate / baseline rate. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fetchbench:", err)
		os.Exit(1)
	}
}

// config holds the command-line settings.
type config struct {
	rkt        string
	dir        string
	rounds     int
	warmup     int
	sizeMB     int64
	seed       uint64
	formats    []string
	dropCaches bool
	genOnly    bool
	hardlinks  bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("fetchbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.rkt, "rkt", "build/bin/rkt", "the rkt binary to measure")
	fs.StringVar(&c.dir, "dir", "/var/tmp", "where to put the images and outputs (a disk file system, not tmpfs); a fresh directory is made inside and removed at the end")
	fs.IntVar(&c.rounds, "n", 5, "measured rounds per format")
	fs.IntVar(&c.warmup, "warmup", 1, "unrecorded rounds before measuring")
	fs.Int64Var(&c.sizeMB, "size", 200, "target uncompressed image size in MB (10^6 bytes)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the image content")
	formats := fs.String("formats", "gzip,plain", "comma-separated image formats to measure: gzip, plain")
	fs.BoolVar(&c.dropCaches, "drop-caches", false, "before every timed run, drop the page cache, dentries and inodes, then read the image back in (root only; affects everything on the machine)")
	fs.BoolVar(&c.genOnly, "gen-only", false, "only write bench.aci and bench.aci.gz into -dir itself, keep them, and exit")
	fs.BoolVar(&c.hardlinks, "hardlinks", false, "add hard links to the image (as tar writes them in an ACI: target \"rootfs/...\")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: all settings are flags (see -h)", fs.Args())
	}
	if c.rounds < 1 || c.warmup < 0 || c.sizeMB < 1 {
		return nil, errors.New("-n and -size must be at least 1, -warmup at least 0")
	}
	for _, f := range strings.Split(*formats, ",") {
		if f != "gzip" && f != "plain" {
			return nil, fmt.Errorf("-formats: unknown format %q: use gzip, plain or both", f)
		}
		c.formats = append(c.formats, f)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	opts := GenOptions{Size: c.sizeMB * 1e6, Seed: c.seed, Hardlinks: c.hardlinks}
	if c.genOnly {
		start := time.Now()
		im, err := WriteImages(ctx, c.dir, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n%s\nID %s, %d files, %d bytes uncompressed, written in %s\n",
			im.Plain, im.Gzip, im.ID, im.Files, im.Uncompressed, time.Since(start).Round(time.Millisecond))
		return nil
	}
	rkt, err := filepath.Abs(c.rkt)
	if err != nil {
		return err
	}
	if _, err := os.Stat(rkt); err != nil {
		return fmt.Errorf("the rkt binary: %w (build it: CGO_ENABLED=0 go build -o build/bin/rkt ./rkt, or pass -rkt)", err)
	}
	work, err := os.MkdirTemp(c.dir, "fetchbench-")
	if err != nil {
		return fmt.Errorf("making the work directory: %w (pass -dir)", err)
	}
	defer func() {
		os.RemoveAll(work)
		syscall.Sync() // leave no dirty inode tables behind (see runner)
	}()
	env := describeEnv(work)
	if env.fsType == "tmpfs" {
		fmt.Fprintf(stderr, "fetchbench: warning: %s is on tmpfs: the figures will not include any disk writes\n", work)
	}
	start := time.Now()
	im, err := WriteImages(ctx, work, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%d files, %.1f MB) and .gz in %s\n", im.Plain, im.Files,
		float64(im.Uncompressed)/1e6, time.Since(start).Round(time.Millisecond))
	if err := checkSpace(work, c, im); err != nil {
		return err
	}
	res, err := measure(ctx, c, &runner{rkt: rkt, work: work, dropCaches: c.dropCaches}, im, stderr)
	if err != nil {
		return err
	}
	report(stdout, env, c, im, res)
	return nil
}

// result is what was measured on one image format.
type result struct {
	format         string
	size           int64 // file size
	rkt, baseline  Series
	baselineScript string
}

// measure runs the rounds, interleaving the contenders and alternating
// which goes first.
func measure(ctx context.Context, c *config, r *runner, im Images, progress io.Writer) ([]*result, error) {
	short := im.ID[:len("sha512-")+12]
	var res []*result
	for _, f := range c.formats {
		x := &result{format: f, baselineScript: "sha512sum FILE && tar -xf FILE"}
		if f == "gzip" {
			x.baselineScript = "sha512sum FILE && tar -xzf FILE"
		}
		res = append(res, x)
	}
	for round := -c.warmup; round < c.rounds; round++ {
		for _, x := range res {
			file := im.Plain
			if x.format == "gzip" {
				file = im.Gzip
			}
			fi, err := os.Stat(file)
			if err != nil {
				return nil, err
			}
			x.size = fi.Size()
			steps := []func() (Sample, error){
				func() (Sample, error) { return r.rktFetch(ctx, file, short) },
				func() (Sample, error) { return r.baseline(ctx, file, x.format == "gzip") },
			}
			names := []string{"rkt", "baseline"}
			for i := range 2 {
				j := (i + round + c.warmup) % 2 // alternate who goes first
				s, err := steps[j]()
				if err != nil {
					return nil, err
				}
				label := fmt.Sprintf("round %d/%d", round+1, c.rounds)
				if round < 0 {
					label = "warm-up"
				} else if j == 0 {
					x.rkt = append(x.rkt, s)
				} else {
					x.baseline = append(x.baseline, s)
				}
				fmt.Fprintf(progress, "%-11s %-5s %-8s %7.3fs (cpu %.3fs, sync after %.3fs)\n", label, x.format, names[j],
					s.Wall.Seconds(), s.CPU.Seconds(), s.Sync.Seconds())
			}
		}
	}
	return res, nil
}

// checkSpace makes sure the outputs of every run fit: they are kept until
// the end (see runner).
func checkSpace(work string, c *config, im Images) error {
	var need int64
	for _, f := range c.formats {
		file := im.Plain
		if f == "gzip" {
			file = im.Gzip
		}
		fi, err := os.Stat(file)
		if err != nil {
			return err
		}
		need += fi.Size() + 2*im.Uncompressed // rkt: blob and tree; baseline: tree
	}
	need = need*int64(c.rounds+c.warmup) + need/10 + 256<<20
	var st unix.Statfs_t
	if err := unix.Statfs(work, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: work, Err: err}
	}
	if free := int64(st.Bavail) * st.Bsize; free < need {
		return fmt.Errorf("%s has %d MB free and the runs need about %d MB (outputs are kept until the end): free space, pass another -dir, or lower -n or -size",
			work, free>>20, need>>20)
	}
	return nil
}
