package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Sample is one timed run.
type Sample struct {
	Wall time.Duration // the command, exec to exit
	CPU  time.Duration // user + system time of the command and its children
	Sync time.Duration // a sync(2) right after the command
}

// runner runs the two contenders on fresh output directories below work.
// Outputs are kept until the whole work directory is removed: on ext4
// without a journal (this machine's disk), files created soon after others
// were deleted make the inode allocator skip every recently deleted inode
// one by one (recently_deleted() in fs/ext4/ialloc.c), which took two
// thirds of tar's time when each run deleted the previous run's tree.
type runner struct {
	rkt        string
	work       string
	dropCaches bool
}

// tools are the programs the runs exec besides rkt; -drop-caches reads them
// back in with the image so that no run pays for loading its binaries.
var tools = []string{"sh", "sha512sum", "tar", "gzip"}

// settle makes every run start alike: nothing dirty in the page cache (an
// untimed sync) and, with dropCaches, nothing cached but the image and the
// programs: the page cache, dentries and inodes are dropped, then those
// files are read back.
// Dropping also keeps the inode tables out of the buffer cache, which stops
// ext4 without a journal from skipping recently deleted inodes one by one
// (see runner).
func (r *runner) settle(image string) error {
	syscall.Sync()
	if !r.dropCaches {
		return nil
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("dropping the page cache (-drop-caches needs root): %w", err)
	}
	files := []string{image}
	if r.rkt != "" {
		files = append(files, r.rkt)
	}
	for _, t := range tools {
		if p, err := exec.LookPath(t); err == nil {
			files = append(files, p)
		}
	}
	for _, name := range files {
		if err := readAll(name); err != nil {
			return fmt.Errorf("reading %s back into the page cache: %w", name, err)
		}
	}
	return nil
}

func readAll(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// timed runs cmd, then times a sync(2) after it.
func timed(cmd *exec.Cmd) (Sample, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	s := Sample{Wall: time.Since(start)}
	if err != nil {
		return s, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	s.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	start = time.Now()
	syscall.Sync()
	s.Sync = time.Since(start)
	return s, nil
}

// rktFetch imports image into a fresh store and checks the printed ID.
func (r *runner) rktFetch(ctx context.Context, image, wantID string) (Sample, error) {
	dir, err := os.MkdirTemp(r.work, "rkt-")
	if err != nil {
		return Sample{}, fmt.Errorf("making a store directory: %w", err)
	}
	if err := r.settle(image); err != nil {
		return Sample{}, err
	}
	cmd := exec.CommandContext(ctx, r.rkt, "--dir="+dir, "--insecure-options=image", "fetch", image)
	var out bytes.Buffer
	cmd.Stdout = &out
	s, err := timed(cmd)
	if err != nil {
		return s, err
	}
	if got := strings.TrimSpace(out.String()); got != wantID {
		return s, fmt.Errorf("rkt fetch %s printed %q, want image ID %q: the import is broken", image, got, wantID)
	}
	return s, nil
}

// baseline runs sha512sum and tar -x of image into a fresh directory.
func (r *runner) baseline(ctx context.Context, image string, gz bool) (Sample, error) {
	dir, err := os.MkdirTemp(r.work, "tar-")
	if err != nil {
		return Sample{}, fmt.Errorf("making a baseline directory: %w", err)
	}
	if err := r.settle(image); err != nil {
		return Sample{}, err
	}
	x := "-xf"
	if gz {
		x = "-xzf"
	}
	script := `sha512sum "$1" >/dev/null && mkdir "$2" && tar ` + x + ` "$1" -C "$2"`
	cmd := exec.CommandContext(ctx, "sh", "-c", script, "sh", image, filepath.Join(dir, "d"))
	return timed(cmd)
}

// median of the values given.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Series are the samples of one contender on one image.
type Series []Sample

func (s Series) wall(withSync bool) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.Wall
		if withSync {
			out[i] += x.Sync
		}
	}
	return out
}

// Median wall time, optionally including the sync after each run.
func (s Series) Median(withSync bool) time.Duration { return median(s.wall(withSync)) }

// MedianCPU is the median CPU time.
func (s Series) MedianCPU() time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.CPU
	}
	return median(out)
}

// Rate is bytes per second in MB/s (10^6 bytes).
func Rate(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}
