package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// timedLine is a line of stderr and when it arrived, in ms since the
// fork of the command.
type timedLine struct {
	at   float64
	text string
}

// interval is a named stretch of a run, in ms.
type interval struct {
	name string
	ms   float64
}

var (
	// rkt: debug: phase setup                           0.50 ms
	rePhase = regexp.MustCompile(`^rkt: debug: phase (.+?)\s+(-?[0-9.]+) ms$`)
	// stage1 [  3.94ms] cgroups ready / stage2 [ 13.00ms] app true: root mounted
	reStage = regexp.MustCompile(`^(stage[12]) \[\s*([0-9.]+)ms\] (.*)$`)
	reUUID  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	rePid   = regexp.MustCompile(`\bpid [0-9]+`)
	// init github.com/x/y @3.6 ms, 0.38 ms clock, 214056 bytes, 762 allocs
	reInit = regexp.MustCompile(`^init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock`)
)

// Names of the intervals that are not printed by rkt but derived.
const (
	ivStart  = "rkt: fork, exec, Go runtime, CLI (until the first phase)"
	ivExec   = "rkt -> stage1: pod to run/, exec stage1, its runtime start"
	ivExit   = "exit: last stage1 line -> wait returns"
	ivTotal  = "total (wall time under --debug)"
	ivSumAll = "sum of the medians above"
)

// parseDebug turns the stderr of one `rkt --debug run` into consecutive
// intervals that add up to total (the run's wall time, ms). stage0
// prints each phase's duration; stage1, its supervisor and the stage2
// launchers print times since stage1 started, so each of their lines
// ends an interval that began at the line before. When stage1 started
// is estimated from the arrival times of its lines (the earliest
// arrival minus the time the line carries).
func parseDebug(lines []timedLine, total float64) ([]interval, error) {
	var out []interval
	first, end := -1.0, 0.0
	type event struct {
		t    float64
		name string
	}
	var evs []event
	s1start := -1.0
	for _, l := range lines {
		if m := rePhase.FindStringSubmatch(l.text); m != nil {
			d, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, fmt.Errorf("phase line %q: %w", l.text, err)
			}
			if first < 0 {
				first = l.at - d
				out = append(out, interval{ivStart, first})
				end = first
			}
			out = append(out, interval{"rkt: " + m[1], d})
			end += d
			continue
		}
		if m := reStage.FindStringSubmatch(l.text); m != nil {
			t, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, fmt.Errorf("stage1 line %q: %w", l.text, err)
			}
			evs = append(evs, event{t, stageName(m[1], m[3])})
			if s := l.at - t; s1start < 0 || s < s1start {
				s1start = s
			}
		}
	}
	if first < 0 {
		return nil, errors.New("no `rkt: debug: phase` lines: is --debug passed, and does this rkt print phases?")
	}
	if len(evs) == 0 {
		return nil, errors.New("no `stage1 [..ms]` lines: does this stage1 print its steps under --debug?")
	}
	out = append(out, interval{ivExec, s1start - end})
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].t < evs[j].t })
	prev := 0.0
	for _, e := range evs {
		out = append(out, interval{e.name, e.t - prev})
		prev = e.t
	}
	return append(out, interval{ivExit, total - (s1start + prev)}), nil
}

// stageName names the interval a stage1 or stage2 line ends, without the
// UUIDs and PIDs that differ from run to run.
func stageName(stage, msg string) string {
	msg = reUUID.ReplaceAllString(msg, "<uuid>")
	msg = rePid.ReplaceAllString(msg, "pid N")
	if rest, ok := strings.CutPrefix(msg, "supervisor: "); ok {
		return "supervisor: " + rest
	}
	return stage + ": " + msg
}

// aggregate returns the interval names in the order they first appear
// and the median of each over the runs that have it.
func aggregate(runs [][]interval) ([]string, map[string]float64) {
	var names []string
	vals := map[string][]float64{}
	for _, r := range runs {
		seen := map[string]bool{}
		for _, iv := range r {
			if _, ok := vals[iv.name]; !ok {
				names = append(names, iv.name)
			}
			if seen[iv.name] {
				// Same name twice in a run (two apps): add them up.
				v := vals[iv.name]
				v[len(v)-1] += iv.ms
				continue
			}
			seen[iv.name] = true
			vals[iv.name] = append(vals[iv.name], iv.ms)
		}
	}
	med := map[string]float64{}
	for n, v := range vals {
		med[n] = summarize(v).median
	}
	return names, med
}

// debugRun runs one `rkt --debug run` and returns its stderr lines with
// their arrival times and its wall time.
func debugRun(ctx context.Context, argv []string) ([]timedLine, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	c := execCommand(ctx, argv)
	pipe, err := c.StderrPipe()
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if err := c.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	var lines []timedLine
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		lines = append(lines, timedLine{float64(time.Since(start).Microseconds()) / 1000, sc.Text()})
	}
	err = c.Wait()
	total := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		var text []string
		for _, l := range lines {
			text = append(text, l.text)
		}
		return nil, 0, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tail(strings.Join(text, "\n")))
	}
	return lines, total, nil
}

// breakdown runs `rkt --debug run` -debug-runs times per rkt directory
// (interleaved) and prints the median of each interval per directory.
func (b *bench) breakdown(ctx context.Context) error {
	runs := make([][][]interval, len(b.rkts))
	totals := make([][]float64, len(b.rkts))
	var failures []error
	for i := 1; i <= b.cfg.debugRuns; i++ {
		for j, d := range b.rkts {
			lines, total, err := debugRun(ctx, b.rktCmd(d, "--debug", "run", "--net=none", imageName))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				failures = append(failures, fmt.Errorf("%s run %d: %w", d.name, i, err))
				continue
			}
			ivs, err := parseDebug(lines, total)
			if err != nil {
				return fmt.Errorf("phase breakdown of %s: %w", d.name, err)
			}
			runs[j] = append(runs[j], ivs)
			totals[j] = append(totals[j], total)
		}
		if i%b.cfg.gcEvery == 0 {
			if err := b.gc(ctx); err != nil {
				b.printf("note: rkt gc (untimed) failed: %v\n", err)
			}
		}
	}
	if err := b.gc(ctx); err != nil {
		b.printf("note: rkt gc (untimed) failed: %v\n", err)
	}
	var all [][]interval
	meds := make([]map[string]float64, len(b.rkts))
	for j := range b.rkts {
		all = append(all, runs[j]...)
		_, meds[j] = aggregate(runs[j])
	}
	names, _ := aggregate(all)
	b.printf("## Where the time goes\n\n")
	for _, err := range failures {
		b.printf("- **a --debug run failed** (left out): %v\n", err)
	}
	if len(failures) > 0 {
		b.printf("\n")
	}
	b.printf("Median over %d `rkt --debug run --net=none %s` runs per directory (failed runs left out), ms. Each row is the\n", b.cfg.debugRuns, imageName)
	b.printf("interval that ends with the line named (stage1/supervisor/stage2 lines) or the phase rkt timed.\n\n")
	b.printf("| interval |")
	for _, d := range b.rkts {
		b.printf(" %s |", d.name)
	}
	b.printf("\n|---|%s\n", strings.Repeat("---:|", len(b.rkts)))
	for _, n := range names {
		b.printf("| %s |", n)
		for j := range b.rkts {
			if v, ok := meds[j][n]; ok {
				b.printf(" %.2f |", v)
			} else {
				b.printf(" – |")
			}
		}
		b.printf("\n")
	}
	for _, row := range []string{ivSumAll, ivTotal} {
		b.printf("| **%s** |", row)
		for j := range b.rkts {
			v := summarize(totals[j]).median
			if row == ivSumAll {
				v = 0
				for _, m := range meds[j] {
					v += m
				}
			}
			b.printf(" **%.2f** |", v)
		}
		b.printf("\n")
	}
	b.printf("\nBy part (sum of the medians):\n\n| part |")
	for _, d := range b.rkts {
		b.printf(" %s |", d.name)
	}
	b.printf("\n|---|%s\n", strings.Repeat("---:|", len(b.rkts)))
	var parts []string
	sums := make([]map[string]float64, len(b.rkts))
	for j := range b.rkts {
		sums[j] = map[string]float64{}
	}
	for _, n := range names {
		p, _, _ := strings.Cut(n, ":")
		if _, ok := sums[0][p]; !ok {
			parts = append(parts, p)
		}
		for j := range b.rkts {
			sums[j][p] += meds[j][n]
		}
	}
	for _, p := range parts {
		b.printf("| %s |", p)
		for j := range b.rkts {
			b.printf(" %.2f |", sums[j][p])
		}
		b.printf("\n")
	}
	b.printf("\n")
	return b.initTrace(ctx)
}

// initTrace is what GODEBUG=inittrace=1 says about one process start.
type initTrace struct {
	// end is when the last package init finished (ms since the process
	// started), about when main starts; sum is the time spent in inits.
	end, sum float64
	pkgs     map[string]float64
}

func parseInitTrace(text string) (initTrace, error) {
	it := initTrace{pkgs: map[string]float64{}}
	for _, l := range strings.Split(text, "\n") {
		m := reInit.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, err1 := strconv.ParseFloat(m[2], 64)
		clock, err2 := strconv.ParseFloat(m[3], 64)
		if err := errors.Join(err1, err2); err != nil {
			return it, fmt.Errorf("inittrace line %q: %w", l, err)
		}
		it.end = max(it.end, at+clock)
		it.sum += clock
		it.pkgs[m[1]] += clock
	}
	if len(it.pkgs) == 0 {
		return it, errors.New("no inittrace lines (GODEBUG=inittrace=1 ignored?)")
	}
	return it, nil
}

// initTrace prints how long rkt's binary takes to reach main: the
// package init functions it runs on every command, the slowest first.
func (b *bench) initTrace(ctx context.Context) error {
	var ends, sums []float64
	pkgs := map[string][]float64{}
	for i := 0; i < b.cfg.debugRuns; i++ {
		c := execCommand(ctx, []string{b.cfg.rkt, "version"})
		c.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var errb strings.Builder
		c.Stderr = &errb
		if err := c.Run(); err != nil {
			return fmt.Errorf("GODEBUG=inittrace=1 rkt version: %w: %s", err, tail(errb.String()))
		}
		it, err := parseInitTrace(errb.String())
		if err != nil {
			return err
		}
		ends, sums = append(ends, it.end), append(sums, it.sum)
		for p, v := range it.pkgs {
			pkgs[p] = append(pkgs[p], v)
		}
	}
	type pc struct {
		pkg string
		ms  float64
	}
	var top []pc
	for p, v := range pkgs {
		top = append(top, pc{p, summarize(v).median})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].ms > top[j].ms })
	b.printf("rkt's own start (`GODEBUG=inittrace=1 rkt version`, median of %d): the last package init ends %.2f ms\n", b.cfg.debugRuns, summarize(ends).median)
	b.printf("after the process started (runtime start, page faults of the binary, inits); %d package inits take %.2f ms\n", len(pkgs), summarize(sums).median)
	b.printf("of that. The slowest:")
	for i, p := range top {
		if i == 6 {
			break
		}
		b.printf(" %s %.2f ms;", p.pkg, p.ms)
	}
	b.printf("\n\n")
	return nil
}
