package gc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestCollectWithoutRecordIsFine(t *testing.T) {
	dir := t.TempDir()
	if err := Collect(context.Background(), dir, Options{Logf: t.Logf}); err != nil {
		t.Errorf("gc of a pod that never started: %v", err)
	}
	// Recorded cgroups that are already gone are fine too (idempotence).
	rec := filepath.Join(dir, "stage1/rootfs/rkt/cgroups")
	os.MkdirAll(filepath.Dir(rec), 0o755)
	os.WriteFile(rec, []byte(filepath.Join(dir, "no-such-cgroup")+"\n"), 0o644)
	if err := Collect(context.Background(), dir, Options{Logf: t.Logf}); err != nil {
		t.Errorf("gc with cgroups already removed: %v", err)
	}
}
