package main

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartLatency measures the time from the exec of init to the app's
// first output (busybox echo), median of 20 runs. It only runs with
// RKT_STAGE1_BENCH=1 (it is slow and its numbers depend on the machine).
func TestStartLatency(t *testing.T) {
	if os.Getenv("RKT_STAGE1_BENCH") == "" {
		t.Skip("set RKT_STAGE1_BENCH=1 to measure the start latency")
	}
	n := 20
	if v, err := strconv.Atoi(os.Getenv("RKT_STAGE1_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	var ds []time.Duration
	for i := 0; i < n; i++ {
		p := newPod(t, stage1testApp("a", "/bin/echo", "x"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c := p.Command(ctx, "init", "--net=host", p.UUID)
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			t.Fatalf("run %d: no output: %v", i, err)
		}
		ds = append(ds, time.Since(start))
		c.Wait()
		cancel()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("init exec -> app output: min %v median %v max %v (n=%d)", ds[0], ds[len(ds)/2], ds[len(ds)-1], n)
}

// TestNetStartLatency measures what --net=default adds over --net=none
// inside stage1: the time from the exec of init to the app's first output
// (start) and to init's exit (the whole run, which includes tearing the
// network down), medians of 20 runs of each, interleaved; then, from
// --debug runs, where the time goes. It only runs with RKT_STAGE1_BENCH=1.
func TestNetStartLatency(t *testing.T) {
	if os.Getenv("RKT_STAGE1_BENCH") == "" {
		t.Skip("set RKT_STAGE1_BENCH=1 to measure the start latency")
	}
	n := 20
	if v, err := strconv.Atoi(os.Getenv("RKT_STAGE1_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	type series struct{ start, total []time.Duration }
	var none, def series
	phases := map[string][]time.Duration{}
	run := func(s *series, debug bool, args ...string) string {
		p := newPod(t, stage1testApp("a", "/bin/echo", "x"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if debug {
			args = append(args, "--debug")
		}
		c := p.Command(ctx, "init", append(args, "--local-config="+p.LocalConfig, p.UUID)...)
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr lockedBuffer
		c.Stderr = &stderr
		start := time.Now()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			t.Fatalf("no output: %v\n%s", err, stderr.String())
		}
		started := time.Since(start)
		if err := c.Wait(); err != nil {
			t.Fatalf("init: %v\n%s", err, stderr.String())
		}
		if s != nil {
			s.start = append(s.start, started)
			s.total = append(s.total, time.Since(start))
		}
		return stderr.String()
	}
	for i := 0; i < n; i++ {
		run(&none, false, "--net=none")
		run(&def, false, "--net=default")
		for k, d := range debugPhases(run(nil, true, "--net=default")) {
			phases[k] = append(phases[k], d)
		}
	}
	med := func(ds []time.Duration) time.Duration {
		ds = append([]time.Duration(nil), ds...)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	t.Logf("init exec -> app output: --net=none median %v, --net=default median %v: +%v (n=%d)",
		med(none.start), med(def.start), med(def.start)-med(none.start), n)
	t.Logf("init exec -> init exit:  --net=none median %v, --net=default median %v: +%v",
		med(none.total), med(def.total), med(def.total)-med(none.total))
	var keys []string
	for k := range phases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  %-50s median %v", k, med(phases[k]))
	}
}

// debugPhases picks durations out of the run entrypoint's --debug output:
// the networking steps' own timings, and the time between some steps.
func debugPhases(stderr string) map[string]time.Duration {
	out := map[string]time.Duration{}
	at := map[string]time.Duration{}
	stamp := regexp.MustCompile(`^stage[12] \[\s*([0-9.]+)ms\] (?:netdown: )?(.*)$`)
	// The networking package's messages and the names they get here.
	own := []struct {
		re   *regexp.Regexp
		name string
	}{
		{regexp.MustCompile(`^networking: networks \S+ planned \(([0-9.]+)ms\)$`), "Setup: networks planned (from Setup's start)"},
		{regexp.MustCompile(`^networking: lo up \(([0-9.]+)ms\)$`), "Setup: lo up (from Setup's start)"},
		{regexp.MustCompile(`^networking:\s+plugin ptp ADD \([a-z ]+\): ([0-9.]+)ms$`), "Setup: plugin ptp ADD"},
		{regexp.MustCompile(`^networking: shared .*: (?:present|added) \(([0-9.]+)ms\)$`), "Setup: shared masquerading rule checked"},
		{regexp.MustCompile(`^networking: network \S+ on \S+: .* \(([0-9.]+)ms\)$`), "Setup: network default ADD"},
		{regexp.MustCompile(`^networking: done \(([0-9.]+)ms\)$`), "Setup: total"},
		{regexp.MustCompile(`^networking:\s+plugin ptp DEL \([a-z ]+\): ([0-9.]+)ms$`), "Teardown: plugin ptp DEL"},
		{regexp.MustCompile(`^networking: network \S+ torn down \(([0-9.]+)ms\)$`), "Teardown: total"},
	}
	for _, l := range strings.Split(stderr, "\n") {
		m := stamp.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ms, _ := strconv.ParseFloat(m[1], 64)
		msg := m[2]
		for _, key := range []string{"supervisor configured", "networking: done", "pod exited", "networks torn down"} {
			if strings.HasPrefix(msg, key) {
				at[key] = time.Duration(ms * float64(time.Millisecond))
			}
		}
		for _, o := range own {
			if v := o.re.FindStringSubmatch(msg); v != nil {
				if f, err := strconv.ParseFloat(v[1], 64); err == nil {
					out[o.name] = time.Duration(f * float64(time.Millisecond))
				}
			}
		}
	}
	if a, b := at["supervisor configured"], at["networking: done"]; b > 0 && a > 0 {
		// The launchers prepare the apps meanwhile: what the networks
		// add to the start beyond that.
		out["supervisor configured -> networks set up"] = b - a
	}
	if a, b := at["pod exited"], at["networks torn down"]; b > 0 {
		out["pod exited -> networks torn down"] = b - a
	}
	return out
}
