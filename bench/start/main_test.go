package main

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in                    []float64
		median, p90, min, max float64
	}{
		{[]float64{3}, 3, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 5, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 4, 1, 4},
		// Nearest rank: ceil(0.9*20) = 18th value.
		{[]float64{20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 10.5, 18, 1, 20},
	} {
		in := append([]float64(nil), tc.in...)
		s := summarize(tc.in)
		if s.n != len(in) || !near(s.median, tc.median) || !near(s.p90, tc.p90) || s.min != tc.min || s.max != tc.max {
			t.Errorf("summarize(%v) = %+v, want median %v p90 %v min %v max %v", in, s, tc.median, tc.p90, tc.min, tc.max)
		}
		if !reflect.DeepEqual(in, tc.in) {
			t.Errorf("summarize sorted its input in place: %v", tc.in)
		}
	}
	if s := summarize(nil); s.n != 0 || s.median != 0 {
		t.Errorf("summarize(nil) = %+v", s)
	}
}

func TestCheck(t *testing.T) {
	if got := check("x", 40, 40, "ms"); !strings.HasPrefix(got, "PASS") {
		t.Errorf("at the limit: %q", got)
	}
	if got := check("x", 40.1, 40, "ms"); !strings.HasPrefix(got, "FAIL") {
		t.Errorf("over the limit: %q", got)
	}
	if got := check("r", 0.25, 0.2, "x"); !strings.HasPrefix(got, "FAIL") || !strings.Contains(got, "0.25x") {
		t.Errorf("ratio: %q", got)
	}
}

// debugLines is a shortened `rkt --debug run` stderr with arrival times.
func debugLines() []timedLine {
	return []timedLine{
		{5.0, "rkt: debug: phase setup                           1.00 ms"},
		{5.5, "rkt: warning: image bench.rkt/true (sha512-0ceb778f1051) is not verified (--insecure-options=image)"},
		{7.1, "rkt: debug: phase stage1 image                    2.00 ms"},
		{7.2, "rkt: debug: pod 9615e070-8bfd-479f-9816-2c4f5c261b6d: exec stage1"},
		{12.0, "stage1 [  1.00ms] pod 9615e070-8bfd-479f-9816-2c4f5c261b6d loaded: 1 apps"},
		// Arrives late: it must not move the estimated stage1 start.
		{20.0, "stage1 [  4.00ms] supervisor started, pid 18966"},
		// Out of order on the pipe: sorted by its own time.
		{17.6, "stage2 [  6.50ms] app true: launcher running"},
		{16.0, "stage1 [  5.00ms] supervisor: app true: launcher pid 8"},
		{21.0, "stage1 [ 10.00ms] supervisor: app true (pid 8) exited with 0"},
	}
}

func TestParseDebug(t *testing.T) {
	ivs, err := parseDebug(debugLines(), 25)
	if err != nil {
		t.Fatal(err)
	}
	want := []interval{
		{ivStart, 4}, // first phase line at 5 ms, it took 1 ms
		{"rkt: setup", 1},
		{"rkt: stage1 image", 2},
		{ivExec, 4}, // stage1 started at 11 (12 - 1); stage0 ended at 7
		{"stage1: pod <uuid> loaded: 1 apps", 1},
		{"stage1: supervisor started, pid N", 3},
		{"supervisor: app true: launcher pid N", 1},
		{"stage2: app true: launcher running", 1.5},
		{"supervisor: app true (pid N) exited with 0", 3.5},
		{ivExit, 4}, // 25 - (11 + 10)
	}
	if len(ivs) != len(want) {
		t.Fatalf("got %d intervals, want %d:\n%v", len(ivs), len(want), ivs)
	}
	sum := 0.0
	for i := range want {
		if ivs[i].name != want[i].name || !near(ivs[i].ms, want[i].ms) {
			t.Errorf("interval %d = %+v, want %+v", i, ivs[i], want[i])
		}
		sum += ivs[i].ms
	}
	if !near(sum, 25) {
		t.Errorf("intervals add up to %v, want the total 25", sum)
	}
}

func TestParseDebugErrors(t *testing.T) {
	lines := debugLines()
	if _, err := parseDebug(lines[4:], 25); err == nil || !strings.Contains(err.Error(), "phase") {
		t.Errorf("no phase lines: err = %v", err)
	}
	if _, err := parseDebug(lines[:4], 25); err == nil || !strings.Contains(err.Error(), "stage1") {
		t.Errorf("no stage1 lines: err = %v", err)
	}
}

func TestAggregate(t *testing.T) {
	runs := [][]interval{
		{{"a", 1}, {"b", 10}},
		{{"a", 3}, {"c", 5}, {"c", 2}}, // c twice: added up
		{{"a", 2}, {"b", 20}},
	}
	names, med := aggregate(runs)
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
		t.Errorf("names = %v", names)
	}
	want := map[string]float64{"a": 2, "b": 15, "c": 7}
	if !reflect.DeepEqual(med, want) {
		t.Errorf("medians = %v, want %v", med, want)
	}
}

func TestParseSmapsRollup(t *testing.T) {
	in := `55d9c3a00000-7ffd2b5fe000 ---p 00000000 00:00 0                          [rollup]
Rss:                5364 kB
Pss:                5356 kB
Pss_Dirty:          1596 kB
Pss_Anon:           1596 kB
Pss_File:           3760 kB
Pss_Shmem:             0 kB
Shared_Clean:          8 kB
`
	m, err := parseSmapsRollup(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (mem{rss: 5364, pss: 5356, anon: 1596, file: 3760}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	m.add(mem{rss: 1, pss: 2, anon: 3, file: 4, shmem: 5})
	if want := (mem{rss: 5365, pss: 5358, anon: 1599, file: 3764, shmem: 5}); m != want {
		t.Errorf("add: got %+v, want %+v", m, want)
	}
	if _, err := parseSmapsRollup(strings.NewReader("Pss: 1 kB\n")); err == nil {
		t.Error("no Rss line: no error")
	}
	if _, err := parseSmapsRollup(strings.NewReader("Rss: x kB\n")); err == nil {
		t.Error("bad number: no error")
	}
}

func TestReadMemSelf(t *testing.T) {
	m, err := readMem(os.Getpid())
	if err != nil {
		t.Skipf("no smaps_rollup here: %v", err)
	}
	if m.rss <= 0 || m.pss <= 0 || m.pss > m.rss {
		t.Errorf("implausible memory of the test process: %+v", m)
	}
}

func TestParsePPid(t *testing.T) {
	pp, err := parsePPid("2455 (rkt (super) visor) S 2438 2455 2455 0 -1 4194560")
	if err != nil || pp != 2438 {
		t.Errorf("got %d, %v; want 2438", pp, err)
	}
	if _, err := parsePPid("2455 no parens"); err == nil {
		t.Error("bad stat line: no error")
	}
	if pp, err := ppidOf(os.Getpid()); err != nil || pp != os.Getppid() {
		t.Errorf("ppidOf(self) = %d, %v; want %d", pp, err, os.Getppid())
	}
}

func TestMeminfo(t *testing.T) {
	in := "MemTotal:       24684544 kB\nMemFree:        23402000 kB\nMemAvailable:   23914000 kB\n" +
		"Buffers:           10000 kB\nCached:           800000 kB\nSReclaimable:      50000 kB\nShmem:   8000 kB\nHugePages_Total: 0\n"
	m, err := parseMeminfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m["HugePages_Total"] != 0 || m["Shmem"] != 8000 {
		t.Errorf("parsed %v", m)
	}
	if got, want := m.used(), int64(24684544-23402000-10000-800000-50000); got != want {
		t.Errorf("used = %d, want %d", got, want)
	}
	if _, err := parseMeminfo(strings.NewReader("MemFree: 1 kB\n")); err == nil {
		t.Error("no MemTotal: no error")
	}
}

func TestMountsUnder(t *testing.T) {
	in := `22 1 254:0 / / rw - ext4 /dev/vda rw
40 22 0:50 / /var/tmp/w/a rw - overlay overlay rw
41 40 0:51 / /var/tmp/w/a/b\040c rw - tmpfs tmpfs rw
42 22 0:52 / /var/tmp/wx rw - tmpfs tmpfs rw
43 22 0:53 / /var/tmp/w rw - tmpfs tmpfs rw
`
	got, err := mountsUnder(strings.NewReader(in), "/var/tmp/w")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/var/tmp/w/a/b c", "/var/tmp/w/a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCgroupMemory(t *testing.T) {
	root := t.TempDir()
	mk := func(rel, file, content string) string {
		d := filepath.Join(root, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if file != "" {
			if err := os.WriteFile(filepath.Join(d, file), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	dirs := []string{
		mk("memory/rkt-1", "memory.usage_in_bytes", "1000\n"),
		mk("memory/rkt-1/stage1", "memory.usage_in_bytes", "400\n"), // inside the top: not added
		mk("unified/rkt-1", "memory.current", "30\n"),
		mk("pids/rkt-1", "", ""),
	}
	got, ok := cgroupMemory(dirs)
	if !ok || got != 1030 {
		t.Errorf("got %d, %v; want 1030, true", got, ok)
	}
	if _, ok := cgroupMemory(dirs[3:]); ok {
		t.Error("no memory files: found")
	}
}

func TestEditSpec(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	in := `{"ociVersion":"1.0.2-dev","process":{"terminal":true,"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"network"}]}}`
	if err := os.WriteFile(p, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := editSpec(p); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	var s struct {
		OCIVersion string `json:"ociVersion"`
		Process    struct {
			Terminal bool     `json:"terminal"`
			Args     []string `json:"args"`
			Cwd      string   `json:"cwd"`
		} `json:"process"`
		Linux struct {
			Namespaces []map[string]string `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Process.Terminal || !reflect.DeepEqual(s.Process.Args, []string{"/bin/true"}) || s.Process.Cwd != "/" ||
		s.OCIVersion != "1.0.2-dev" || len(s.Linux.Namespaces) != 1 {
		t.Errorf("edited spec: %s", data)
	}
	if err := os.WriteFile(p, []byte(`{"process":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := editSpec(p); err == nil {
		t.Error("spec without a process object: no error")
	}
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parseFlags([]string{"-rkt", f, "-aci", f, "-work", dir, "-skip", "podman, runc", "-rounds", "20"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.skip["podman"] || !c.skip["runc"] || !c.skip["signed"] || c.skip["pods"] || c.rounds != 20 {
		t.Errorf("parsed %+v (no -key must skip the signed variant)", c)
	}
	for _, args := range [][]string{
		{"-aci", f, "-work", dir},
		{"-rkt", f, "-aci", f, "-work", dir, "-skip", "nope"},
		{"-rkt", f, "-aci", f, "-work", dir, "-rounds", "0"},
		{"-rkt", f, "-aci", filepath.Join(dir, "missing"), "-work", dir},
		{"-rkt", f, "-aci", f, "-work", dir, "extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

func TestParseInitTrace(t *testing.T) {
	in := "init runtime @0.36 ms, 0.065 ms clock, 0 bytes, 0 allocs\n" +
		"rkt Version: x\n" +
		"init github.com/russross/blackfriday/v2 @3.6 ms, 0.38 ms clock, 214056 bytes, 762 allocs\n" +
		"init main @4.9 ms, 0.11 ms clock, 44680 bytes, 365 allocs\n"
	it, err := parseInitTrace(in)
	if err != nil {
		t.Fatal(err)
	}
	if !near(it.end, 5.01) || !near(it.sum, 0.555) || len(it.pkgs) != 3 || !near(it.pkgs["main"], 0.11) {
		t.Errorf("got %+v", it)
	}
	if _, err := parseInitTrace("rkt Version: x\n"); err == nil {
		t.Error("no init lines: no error")
	}
}
