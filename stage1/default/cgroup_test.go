package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/stage1/stage1test"
)

func TestCgroupLimits(t *testing.T) {
	a := app("a", "--print-memorylimit", "--print-cpuquota", "--print-cpushares", "--print-pidslimit", "--print-oom-score-adj")
	a.Isolators = []string{
		`{"name":"resource/cpu","value":{"limit":"750m"}}`,
		`{"name":"resource/memory","value":{"limit":"128M"}}`,
		`{"name":"os/linux/cpu-shares","value":512}`,
		`{"name":"os/linux/oom-score-adj","value":250}`,
	}
	a.Annotations = map[string]string{"rkt.dev/pids-limit": "77"}
	r := runApp(t, a)
	want(t, r.Stdout, "memory limit", "128000000")
	want(t, r.Stdout, "cpu quota", "75000/100000")
	if v, _ := stage1test.Value(r.Stdout, "cpu shares"); v != "512" {
		want(t, r.Stdout, "cpu weight", "20") // cgroup v2
	}
	want(t, r.Stdout, "pids limit", "77")
	want(t, r.Stdout, "oom_score_adj", "250")

	// The app cannot raise its own limits.
	sh := stage1testApp("sh", "/bin/sh", "-c", "echo max > /sys/fs/cgroup/pids/pids.max || echo ro")
	sh.Annotations = map[string]string{"rkt.dev/pids-limit": "50"}
	if r := runApp(t, sh); !strings.Contains(r.Stdout, "ro") || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("writing pids.max: stdout %q stderr %q", r.Stdout, r.Stderr)
	}

	// Defaults: no CPU or memory limit, the default pids limit.
	r = runApp(t, app("b", "--print-cpuquota", "--print-pidslimit"))
	want(t, r.Stdout, "cpu quota", "max/100000")
	want(t, r.Stdout, "pids limit", "4096")
}

// TestGCRemovesCgroups checks that the pod's cgroups exist in every
// hierarchy after a run, and that gc removes them (twice is fine).
func TestGCRemovesCgroups(t *testing.T) {
	p := newPod(t, app("a", "--exit-code=0"), app("b", "--exit-code=0"))
	if r := p.RunPod("--net=host"); r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	dirs := strings.Fields(p.ReadFile("stage1/rootfs/rkt/cgroups"))
	if len(dirs) < 4 {
		t.Fatalf("recorded cgroups: %v", dirs)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("cgroup %s: %v", d, err)
		}
	}
	for i := 0; i < 2; i++ {
		if r := p.Run("gc", p.UUID); r.Code != 0 {
			t.Fatalf("gc #%d: exit %d: %s", i+1, r.Code, r.Stderr)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still there after gc: %v", d, err)
		}
	}
}

// TestInSystemdUnit: run from a cgroup that looks like a systemd service,
// the pod stays in it (stage1 and the apps in sub-cgroups of it).
func TestInSystemdUnit(t *testing.T) {
	requireRoot(t)
	hs, err := cgroup.Self()
	if err != nil || len(hs) == 0 {
		t.Skipf("no cgroups: %v", err)
	}
	unit := fmt.Sprintf("rkt-test-%d.service", os.Getpid())
	var dirs []string
	for _, h := range hs {
		d := filepath.Join(h.Dir(h.Path), unit)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
		if h.Has("cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, _ := os.ReadFile(filepath.Join(filepath.Dir(d), f))
				os.WriteFile(filepath.Join(d, f), b, 0o644)
			}
		}
	}
	t.Cleanup(func() {
		if err := cgroup.Remove(context.Background(), dirs); err != nil {
			t.Errorf("remove the test unit's cgroups: %v", err)
		}
	})
	a := app("a", "--print-memorylimit", "--sleep=0.2")
	a.Isolators = []string{`{"name":"resource/memory","value":{"limit":"64M"}}`}
	p := newPod(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := p.CommandInCgroups(ctx, dirs, "init", "--net=host", p.UUID)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want(t, string(out), "memory limit", "64000000")
	var unitPath string
	for _, h := range hs {
		if h.Has("name=systemd") || (unitPath == "" && h.Unified) {
			unitPath = filepath.Join(h.Path, unit)
		}
	}
	if sub := p.ReadFile("subcgroup"); sub != unitPath {
		t.Errorf("subcgroup %q, want the unit's %q", sub, unitPath)
	}
	recorded := strings.Fields(p.ReadFile("stage1/rootfs/rkt/cgroups"))
	for _, d := range recorded {
		if b := filepath.Base(d); b != "stage1" && b != "app-a" {
			t.Errorf("stage1 recorded %s as its own: only stage1 and app-a are", d)
		}
	}
	if r := p.Run("gc", p.UUID); r.Code != 0 {
		t.Fatalf("gc: %s", r.Stderr)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("gc removed the unit's cgroup %s", d)
		}
		if _, err := os.Stat(filepath.Join(d, "app-a")); err == nil {
			t.Errorf("gc left %s/app-a", d)
		}
	}
}
