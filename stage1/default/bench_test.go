package main

import (
	"bufio"
	"context"
	"os"
	"sort"
	"strconv"
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
