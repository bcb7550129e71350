package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/stage1/stage1test"
)

func boolp(b bool) *bool { return &b }

func TestVolumes(t *testing.T) {
	requireRoot(t)
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "f"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	mode, uid, gid := "0750", 1000, 1001
	a := stage1testApp("a", "/bin/sh", "-c",
		"echo hi > /rw/new && cat /ro/f && (echo x > /ro/g || echo ro-blocked) && stat -c '%a %u %g' /empty && touch /empty/e && echo ok")
	a.Mounts = []schema.Mount{
		{Volume: "rw", Path: "/rw"},
		{Volume: "ro", Path: "/ro"},
		{Volume: "empty", Path: "/empty"},
	}
	p := stage1test.NewPod(t, binDir, stage1test.Spec{
		Apps: []stage1test.App{a},
		Volumes: []types.Volume{
			{Name: "rw", Kind: "host", Source: rw},
			{Name: "ro", Kind: "host", Source: ro, ReadOnly: boolp(true)},
			{Name: "empty", Kind: "empty", Mode: &mode, UID: &uid, GID: &gid},
		},
	})
	r := p.RunPod("--net=host")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	for _, s := range []string{"from host", "ro-blocked", "750 1000 1001", "ok"} {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("no %q in %q", s, r.Stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rw, "new")); err != nil || string(b) != "hi\n" {
		t.Errorf("write to the rw volume: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "g")); err == nil {
		t.Error("the read-only volume was written")
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "sharedVolumes/empty/e")); err != nil {
		t.Errorf("the empty volume is not backed by sharedVolumes/empty: %v", err)
	}
}

// TestVolumeSharedBetweenApps: two apps see the same empty volume.
func TestVolumeSharedBetweenApps(t *testing.T) {
	requireRoot(t)
	mode, zero := "0777", 0
	w := stage1testApp("writer", "/bin/sh", "-c", "echo shared > /v/file")
	w.Mounts = []schema.Mount{{Volume: "v", Path: "/v"}}
	rd := stage1testApp("reader", "/bin/sh", "-c", "sleep 0.5; cat /data/file")
	rd.Mounts = []schema.Mount{{Volume: "v", Path: "/data"}}
	p := stage1test.NewPod(t, binDir, stage1test.Spec{
		Apps:    []stage1test.App{w, rd},
		Volumes: []types.Volume{{Name: "v", Kind: "empty", Mode: &mode, UID: &zero, GID: &zero}},
	})
	r := p.RunPod("--net=host")
	if r.Code != 0 || !strings.Contains(r.Stdout, "shared") {
		t.Errorf("exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}
