package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Target is the rate rkt should reach, relative to the baseline as is.
const Target = 0.8

// env describes the machine the figures come from.
type env struct {
	date, kernel, cpu, fsType string
	cores                     int
	load                      string // load averages when the runs began
}

// loadAvg returns the 1-minute load average: other work on the machine
// skews the figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func describeEnv(dir string) env {
	e := env{date: time.Now().UTC().Format("2006-01-02 15:04 MST"), cores: runtime.NumCPU(), fsType: "unknown", load: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		e.fsType = fsName(st.Type)
	}
	return e
}

func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return fmt.Sprintf("fs magic %#x", magic)
}

// report prints the table and the ratios.
func report(w io.Writer, e env, c *config, im Images, res []*result) {
	cache := "warm page cache (the image file stays cached; outputs are synced, untimed, before each run)"
	if c.dropCaches {
		cache = "caches dropped and the image read back in before each run"
	}
	fmt.Fprintf(w, "%s, kernel %s, %d cores, %s, %s on %s\n", e.date, e.kernel, e.cores, e.cpu, e.fsType, c.dir)
	fmt.Fprintf(w, "image: %.1f MB uncompressed, %d files; median of %d rounds (+%d warm-up); %s\n",
		float64(im.Uncompressed)/1e6, im.Files, c.rounds, c.warmup, cache)
	fmt.Fprintf(w, "load average (1 min) %s before the runs, %s after\n", e.load, loadAvg())
	fmt.Fprintln(w, "MB/s = uncompressed MB (10^6 bytes) / median wall time")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "format\tfile MB\tcommand\twall s\tMB/s\tCPU s\t")
	for _, x := range res {
		rows := []struct {
			name string
			s    Series
			sync bool
		}{
			{"rkt fetch", x.rkt, false},
			{x.baselineScript, x.baseline, false},
			{x.baselineScript + "; sync", x.baseline, true},
		}
		for _, r := range rows {
			d := r.s.Median(r.sync)
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t%.3f\t%.1f\t%.3f\t\n", x.format, float64(x.size)/1e6, r.name,
				d.Seconds(), Rate(im.Uncompressed, d), r.s.MedianCPU().Seconds())
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ratio = rkt MB/s / baseline MB/s; the target (>= %.2f) is against the baseline as is\n", Target)
	for _, x := range res {
		rk := Rate(im.Uncompressed, x.rkt.Median(false))
		asIs := rk / Rate(im.Uncompressed, x.baseline.Median(false))
		synced := rk / Rate(im.Uncompressed, x.baseline.Median(true))
		verdict := "meets the target"
		if asIs < Target {
			verdict = "BELOW the target"
		}
		fmt.Fprintf(w, "%-5s  ratio %.2f (baseline as is: %s)   ratio %.2f (baseline + sync)\n", x.format, asIs, verdict, synced)
	}
}
