package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/rkt/rkt/bench/internal/reap"
)

// runTimeout bounds one timed command.
const runTimeout = 60 * time.Second

// Targets of the start latency (the issue's).
const (
	targetMedianMs   = 40.0
	targetVsRunc     = 1.1
	targetVsPodman   = 0.2
	targetIdleRSSKiB = 6 * 1024
)

// tool is one timed command and what came of it.
type tool struct {
	name string
	// argv returns the command of one round (rounds count from 1; the
	// probe is round 0).
	argv func(round int) []string
	// after, if set, cleans up after a failed round, untimed.
	after func(ctx context.Context, round int)
	// err says why the tool is left out; notes are findings of its setup.
	err   error
	notes []string
	// samples are the wall times of the successful timed rounds, in ms.
	samples []float64
	fails   int
	lastErr string
	// orphans counts the processes the tool left running when it
	// returned; lingerMs is the longest they ran on (untimed).
	orphans  int
	lingerMs float64
}

// runOnce runs one round of t and returns its wall time in ms: from
// just before the fork to the return of wait. stderr goes to errFile (a
// file, not a pipe, so that no process that keeps it open delays wait).
func (t *tool) runOnce(ctx context.Context, round int, errFile *os.File) (float64, error) {
	if err := errFile.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := errFile.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	c := execCommand(rctx, t.argv(round))
	c.Stderr = errFile
	start := time.Now()
	err := c.Run()
	ms := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		msg, _ := os.ReadFile(errFile.Name())
		if t.after != nil {
			t.after(ctx, round)
		}
		return ms, fmt.Errorf("%s round %d: %w: %s", t.name, round, err, tail(string(msg)))
	}
	return ms, nil
}

// probe runs every usable tool once; a tool that fails is left out.
func (b *bench) probe(ctx context.Context, tools []*tool) {
	f, err := os.CreateTemp(b.cfg.work, "stderr-")
	if err != nil {
		for _, t := range tools {
			t.err = err
		}
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	for _, t := range tools {
		if t.err == nil {
			if _, err := t.runOnce(ctx, 0, f); err != nil {
				t.err = err
			}
		}
	}
	if err := b.gc(ctx); err != nil {
		b.printf("note: rkt gc after the probe failed: %v\n", err)
	}
	b.printf("## Setup\n\n")
	for _, t := range tools {
		for _, n := range t.notes {
			b.printf("- %s\n", n)
		}
		if t.err != nil {
			b.printf("- **%s left out**: %v\n", t.name, t.err)
		} else {
			b.printf("- %s: `%s`\n", t.name, strings.Join(t.argv(1), " "))
		}
	}
	b.printf("\n")
}

// latency runs warm-up and timed rounds of the usable tools, interleaved
// (one of each per round, in an order shuffled from round to round, see
// roundOrder), collects the rkt pods every
// -gc-every rounds outside the timing, and prints the results and the
// targets. After each command, untimed, it waits for the processes the
// command left behind, so that their work does not land in the next
// command's time.
func (b *bench) latency(ctx context.Context, tools []*tool) error {
	var active []*tool
	for _, t := range tools {
		if t.err == nil {
			active = append(active, t)
		}
	}
	f, err := os.CreateTemp(b.cfg.work, "stderr-")
	if err != nil {
		return fmt.Errorf("make a file for the tools' stderr: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := reap.Adopt(true); err != nil {
		b.printf("note: cannot become the subreaper of the tools' leftovers: %v\n", err)
	}
	defer reap.Adopt(false)
	total := b.cfg.warmup + b.cfg.rounds
	for r := 1; r <= total; r++ {
		for _, i := range roundOrder(r, len(active)) {
			t := active[i]
			ms, err := t.runOnce(ctx, r, f)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			start := time.Now()
			n, left := reap.Orphans(5 * time.Second)
			if left {
				b.printf("note: %s round %d left processes running for more than 5 s\n", t.name, r)
			}
			if n > 0 {
				t.orphans += n
				t.lingerMs = max(t.lingerMs, float64(time.Since(start).Microseconds())/1000)
			}
			if r <= b.cfg.warmup {
				continue
			}
			if err != nil {
				t.fails++
				t.lastErr = err.Error()
				continue
			}
			t.samples = append(t.samples, ms)
		}
		if r%b.cfg.gcEvery == 0 || r == total {
			if err := b.gc(ctx); err != nil {
				b.printf("note: rkt gc (untimed) after round %d failed: %v\n", r, err)
			}
		}
	}
	b.printLatency(tools)
	return nil
}

// roundOrder is the order of n tools in round r: a permutation drawn from
// a generator seeded with r (the same in every run of the benchmark).
// Shuffled, not rotated: with a rotation each tool mostly runs right
// after the same other one, and what that one leaves behind (podman's
// deleted container layers, which make new files cost more on ext4
// without a journal; the page cache it evicts) lands on the same tool
// every time.
func roundOrder(r, n int) []int {
	return rand.New(rand.NewPCG(uint64(r), 0x726b74)).Perm(n)
}

// printLatency prints the per-tool table, the failures and the targets.
func (b *bench) printLatency(tools []*tool) {
	b.printf("## Start latency\n\n")
	b.printf("%d timed rounds after %d warm-up rounds, interleaved (the order shuffled every round); wall time of the whole\n", b.cfg.rounds, b.cfg.warmup)
	b.printf("command (fork to wait), ms.\n\n")
	b.printf("| tool | runs | failed | median | p90 | min | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	med := map[string]float64{}
	for _, t := range tools {
		if t.err != nil {
			b.printf("| %s | – | – | left out | | | |\n", t.name)
			continue
		}
		s := summarize(t.samples)
		b.printf("| %s | %d | %d | %.1f | %.1f | %.1f | %.1f |\n", t.name, s.n, t.fails, s.median, s.p90, s.min, s.max)
		if s.n > 0 {
			med[t.name] = s.median
		}
	}
	b.printf("\n")
	for _, t := range tools {
		if t.fails > 0 {
			b.printf("- %s failed %d times; last: %s\n", t.name, t.fails, t.lastErr)
		}
		if t.orphans > 0 {
			b.printf("- %s left %d processes behind over all rounds (reaped untimed; the longest wait was %.1f ms)\n",
				t.name, t.orphans, t.lingerMs)
		}
	}
	b.printf("- load average after the rounds: %s\n", loadavg())
	b.printf("\nTargets:\n\n```\n")
	for _, name := range []string{"rkt", "rkt-signed"} {
		m, ok := med[name]
		if !ok {
			continue
		}
		b.printf("%s\n", check(name+" median", m, targetMedianMs, "ms"))
		if r, ok := med["runc"]; ok {
			b.printf("%s\n", check(name+"/runc", m/r, targetVsRunc, "x"))
		}
		if p, ok := med["podman"]; ok {
			b.printf("%s\n", check(name+"/podman", m/p, targetVsPodman, "x"))
		}
	}
	if s, ok := med["rkt-signed"]; ok && med["rkt"] > 0 {
		b.printf("info rkt-signed/rkt = %.2fx (cached images are not verified again: expect about 1)\n", s/med["rkt"])
	}
	b.printf("```\n\n")
}

// check formats one target as a PASS or FAIL line.
func check(what string, v, limit float64, unit string) string {
	verdict := "PASS"
	if v > limit {
		verdict = "FAIL"
	}
	if unit == "x" {
		return fmt.Sprintf("%s %s = %.2fx (target <= %.2fx)", verdict, what, v, limit)
	}
	return fmt.Sprintf("%s %s = %.1f %s (target <= %.1f %s)", verdict, what, v, unit, limit, unit)
}

// summary describes a sample.
type summary struct {
	n                     int
	median, p90, min, max float64
}

// summarize returns the median (the mean of the middle two for an even
// count), the nearest-rank 90th percentile, the minimum and the maximum.
func summarize(xs []float64) summary {
	s := summary{n: len(xs)}
	if s.n == 0 {
		return s
	}
	v := append([]float64(nil), xs...)
	sort.Float64s(v)
	s.median = median(v)
	s.p90 = v[int(math.Ceil(0.9*float64(s.n)))-1]
	s.min, s.max = v[0], v[s.n-1]
	return s
}

// median returns the median of sorted values (0 for none).
func median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return sorted[n/2]
	default:
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
}
