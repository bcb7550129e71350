package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/testutil"
)

const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /mnt/with\040space rw - ext4 /dev/sda rw
`

const hybridCgroup = `9:name=systemd:/user.slice/session-3.scope
8:pids:/user.slice
4:memory:/process_api/e8d6
3:cpuset:/
2:cpu,cpuacct:/user.slice
0::/user.slice/session-3.scope
`

func TestParseHybrid(t *testing.T) {
	hs, err := Parse(strings.NewReader(hybridMountinfo), strings.NewReader(hybridCgroup))
	if err != nil {
		t.Fatal(err)
	}
	// cpuset is not mounted, so it is left out.
	want := []Hierarchy{
		{Mount: "/sys/fs/cgroup/systemd", Root: "/", Controllers: []string{"name=systemd"}, Path: "/user.slice/session-3.scope"},
		{Mount: "/sys/fs/cgroup/pids", Root: "/", Controllers: []string{"pids"}, Path: "/user.slice"},
		{Mount: "/sys/fs/cgroup/memory", Root: "/", Controllers: []string{"memory"}, Path: "/process_api/e8d6"},
		{Mount: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Controllers: []string{"cpu", "cpuacct"}, Path: "/user.slice"},
		{Mount: "/sys/fs/cgroup/unified", Root: "/", Unified: true, Path: "/user.slice/session-3.scope"},
	}
	if len(hs) != len(want) {
		t.Fatalf("got %d hierarchies %+v, want %d", len(hs), hs, len(want))
	}
	for i := range want {
		g, w := hs[i], want[i]
		if g.Mount != w.Mount || g.Root != w.Root || g.Unified != w.Unified || g.Path != w.Path ||
			strings.Join(g.Controllers, ",") != strings.Join(w.Controllers, ",") {
			t.Errorf("hierarchy %d = %+v, want %+v", i, g, w)
		}
	}
	if UnderSystemdUnit(hs) {
		t.Error("a login session scope was taken for a systemd unit")
	}
}

func TestUnderSystemdUnit(t *testing.T) {
	for p, want := range map[string]bool{
		"/system.slice/etcd.service":               true,
		"/system.slice/run-r1234.scope":            true,
		"/user.slice/user-0.slice/session-1.scope": false,
		"/":              false,
		"/process_api/x": false,
	} {
		v2 := []Hierarchy{{Mount: "/sys/fs/cgroup", Root: "/", Unified: true, Path: p}}
		if got := UnderSystemdUnit(v2); got != want {
			t.Errorf("v2 %s: got %v, want %v", p, got, want)
		}
		v1 := []Hierarchy{
			{Mount: "/m", Root: "/", Controllers: []string{"memory"}, Path: "/x.service"},
			{Mount: "/s", Root: "/", Controllers: []string{"name=systemd"}, Path: p},
		}
		if got := UnderSystemdUnit(v1); got != want {
			t.Errorf("v1 %s: got %v, want %v", p, got, want)
		}
	}
}

func TestDirWithMountedRoot(t *testing.T) {
	h := Hierarchy{Mount: "/sys/fs/cgroup", Root: "/kube/pod1", Unified: true}
	if got := h.Dir("/kube/pod1/rkt-x"); got != "/sys/fs/cgroup/rkt-x" {
		t.Errorf("Dir = %s", got)
	}
	if got := h.Dir("/other"); got != "/sys/fs/cgroup/other" {
		t.Errorf("Dir outside the root = %s", got)
	}
}

func TestLimitValues(t *testing.T) {
	l := Limits{CPUMilli: 750}
	if q := l.CPUQuota(); q != 75000 {
		t.Errorf("750m quota = %d, want 75000", q)
	}
	if q := (Limits{CPUMilli: 1}).CPUQuota(); q != 1000 {
		t.Errorf("1m quota = %d, want the 1000 minimum", q)
	}
	for shares, want := range map[int64]int64{2: 1, 1024: 39, 262144: 10000, 1: 1} {
		if got := CPUWeight(shares); got != want {
			t.Errorf("CPUWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

// fakeFS makes a fake cgroupfs: one directory per hierarchy below a temp dir.
func fakeFS(t *testing.T, v2Controllers string, v1 ...string) []Hierarchy {
	t.Helper()
	base := t.TempDir()
	var hs []Hierarchy
	for _, c := range v1 {
		m := filepath.Join(base, c)
		if err := os.MkdirAll(filepath.Join(m, "caller"), 0o755); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, Hierarchy{Mount: m, Root: "/", Controllers: strings.Split(c, ","), Path: "/caller"})
	}
	if v2Controllers != "-" {
		m := filepath.Join(base, "unified")
		if err := os.MkdirAll(filepath.Join(m, "caller"), 0o755); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(m, "cgroup.controllers"), v2Controllers)
		mustWrite(t, filepath.Join(m, "cgroup.subtree_control"), v2Controllers)
		hs = append(hs, Hierarchy{Mount: m, Root: "/", Unified: true, Path: "/caller"})
	}
	return hs
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestPodOnFakeV2(t *testing.T) {
	hs := fakeFS(t, "cpu memory pids")
	uni := hs[0].Mount
	p := NewPod(hs, "u1", false)
	if err := p.Create(true); err != nil {
		t.Fatal(err)
	}
	if err := Join(p.Stage1Dirs()[0], 1234); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(uni, "caller/rkt-u1/stage1/cgroup.procs")); got != "1234" {
		t.Errorf("stage1 leaf procs = %q", got)
	}
	if got := p.Subcgroup(); got != "/caller/rkt-u1" {
		t.Errorf("Subcgroup = %q", got)
	}
	dirs, err := p.AddApp("web", Limits{CPUMilli: 750, MemoryBytes: 128 << 20, CPUShares: 1024, PidsMax: 100})
	if err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(uni, "caller/rkt-u1/app-web")
	if len(dirs) != 1 || dirs[0] != app {
		t.Fatalf("dirs = %v, want [%s]", dirs, app)
	}
	for file, want := range map[string]string{
		"cpu.max": "75000 100000", "memory.max": "134217728", "cpu.weight": "39", "pids.max": "100",
	} {
		if got := read(t, filepath.Join(app, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// Every controller got enabled for the pod's children.
	on, err := controllerList(filepath.Join(uni, "caller/rkt-u1/cgroup.subtree_control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !on[c] {
			t.Errorf("controller %s not enabled in the pod cgroup (subtree_control %v)", c, on)
		}
	}
	// ... and for the pod itself in the caller's cgroup.
	on, _ = controllerList(filepath.Join(uni, "caller/cgroup.subtree_control"))
	if !on["memory"] {
		t.Errorf("memory not enabled in the caller's subtree_control: %v", on)
	}
	created := p.Created()
	if err := Remove(context.Background(), created); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(uni, "caller/rkt-u1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod cgroup still there after Remove: %v", err)
	}
	if err := Remove(context.Background(), created); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestPodOnFakeV2MissingController(t *testing.T) {
	hs := fakeFS(t, "memory")
	p := NewPod(hs, "u2", false)
	if err := p.Create(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Stage1Dirs()[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stage1 leaf made though none was asked for: %v", err)
	}
	if _, err := p.AddApp("a", Limits{CPUMilli: 500}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("cpu limit without a cpu controller: err = %v, want ErrUnavailable", err)
	}
	// A default pids limit is skipped quietly.
	dirs, err := p.AddApp("b", Limits{MemoryBytes: 1 << 20, PidsMax: 4096, PidsMaxIsDefault: true})
	if err != nil {
		t.Fatalf("default pids limit without a pids controller: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "pids.max")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pids.max written without a pids controller")
	}
}

func TestPodOnFakeV1InUnit(t *testing.T) {
	hs := fakeFS(t, "-", "cpu,cpuacct", "memory", "pids", "name=systemd")
	p := NewPod(hs, "u3", true)
	if err := p.Create(true); err != nil {
		t.Fatal(err)
	}
	for _, d := range p.Stage1Dirs() {
		if err := Join(d, 42); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Subcgroup(); got != "/caller" {
		t.Errorf("Subcgroup in a unit = %q, want the caller's /caller", got)
	}
	dirs, err := p.AddApp("db", Limits{CPUMilli: 250, MemoryBytes: 1000, PidsMax: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 4 {
		t.Fatalf("dirs = %v", dirs)
	}
	for file, want := range map[string]string{
		"cpu,cpuacct/caller/app-db/cpu.cfs_quota_us":  "25000",
		"cpu,cpuacct/caller/app-db/cpu.cfs_period_us": "100000",
		"memory/caller/app-db/memory.limit_in_bytes":  "1000",
		"pids/caller/app-db/pids.max":                 "7",
		"memory/caller/stage1/cgroup.procs":           "42",
	} {
		if got := read(t, filepath.Join(filepath.Dir(hs[0].Mount), file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// The unit's own cgroup is not ours to remove.
	for _, d := range p.Created() {
		if filepath.Base(d) == "caller" {
			t.Errorf("Created lists the unit's cgroup %s", d)
		}
	}
	if err := Remove(context.Background(), p.Created()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(hs[1].Mount, "caller")); err != nil {
		t.Errorf("the unit's cgroup was removed: %v", err)
	}
}

// TestRealHost creates a pod cgroup on the machine's cgroupfs (as root).
func TestRealHost(t *testing.T) {
	testutil.RequireRoot(t)
	hs, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	p := NewPod(hs, "unittest-"+time.Now().Format("150405.000000"), false)
	t.Cleanup(func() {
		if err := Remove(context.Background(), p.Created()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := p.Create(true); err != nil {
		t.Fatal(err)
	}
	for _, d := range p.Stage1Dirs() {
		if err := Join(d, os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	// Move back, or Remove could not delete the leaf.
	defer func() {
		for _, h := range hs {
			if err := Join(h.Dir(h.Path), os.Getpid()); err != nil {
				t.Errorf("move back: %v", err)
			}
		}
	}()
	dirs, err := p.AddApp("t", Limits{MemoryBytes: 64 << 20, CPUMilli: 500})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range dirs {
		for _, f := range []string{"memory.limit_in_bytes", "memory.max"} {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				found = true
				if strings.TrimSpace(string(b)) != "67108864" {
					t.Errorf("%s/%s = %s", d, f, b)
				}
			}
		}
	}
	if !found {
		t.Errorf("no memory limit file in %v", dirs)
	}
}

func TestForPod(t *testing.T) {
	hs := []Hierarchy{
		{Mount: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}},
		{Mount: "/sys/fs/cgroup/cpu,cpuacct", Controllers: []string{"cpu", "cpuacct"}},
		{Mount: "/sys/fs/cgroup/cpuset", Controllers: []string{"cpuset"}},
		{Mount: "/sys/fs/cgroup/memory", Controllers: []string{"memory"}},
		{Mount: "/sys/fs/cgroup/blkio", Controllers: []string{"blkio"}},
		{Mount: "/sys/fs/cgroup/pids", Controllers: []string{"pids"}},
		{Mount: "/sys/fs/cgroup/net_cls,net_prio", Controllers: []string{"net_cls", "net_prio"}},
		{Mount: "/sys/fs/cgroup/devices", Controllers: []string{"devices"}},
		{Mount: "/sys/fs/cgroup/unified", Unified: true},
	}
	var got []string
	for _, h := range ForPod(hs) {
		got = append(got, h.Mount)
	}
	want := []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/unified"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ForPod: %v, want %v", got, want)
	}
}
