package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/mounts"
)

// TestGCFailedTeardown: a pod whose stage1 gc fails (as a CNI DEL the
// plugin refuses) makes gc exit 254 naming it, every time, so that
// rkt-gc.service shows the failure; gc retries it on each run and removes
// it anyway after the last attempt. rkt rm refuses it with a hint, and rm
// --force removes it at once, leaving nothing mounted.
func TestGCFailedTeardown(t *testing.T) {
	e := newPodEnv(t)
	const fail = "rkt.dev/stub-gc-fail=CNI DEL refused by plugin"
	uuid, r := e.runSaved(fail)
	if r.Exit != 0 {
		t.Fatalf("rkt run: exit %d\nstderr: %s", r.Exit, r.Stderr)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		r := e.Run("gc", "--grace-period=0s")
		if r.Exit != 254 || !strings.Contains(r.Stderr, uuid) || !strings.Contains(r.Stderr, "CNI DEL refused") {
			t.Fatalf("gc run %d with a failing teardown: exit %d, stderr %q; want 254 naming the pod and the failure", attempt, r.Exit, r.Stderr)
		}
		phases := e.podDirPhases(uuid)
		if attempt < 3 {
			if len(phases) != 1 || !strings.Contains(r.Stderr, "attempt") || !strings.Contains(r.Stderr, "rm --force") {
				t.Errorf("gc run %d: pod in %v, stderr %q; want it kept, with the attempt and rm --force named", attempt, phases, r.Stderr)
			}
		} else if len(phases) != 0 || !strings.Contains(r.Stderr, "teardown failed") {
			t.Errorf("gc run %d: pod still in %v (stderr %q); want it removed after the last attempt, saying what failed", attempt, phases, r.Stderr)
		}
	}
	if r := e.Run("gc", "--grace-period=0s"); r.Exit != 0 {
		t.Errorf("gc with nothing left: exit %d, stderr %q", r.Exit, r.Stderr)
	}

	// rm: refused (the pod stays), then --force.
	uuid, _ = e.runSaved(fail)
	r = e.MustFail(254, "rm --force", "rm", uuid)
	if !strings.Contains(r.Stderr, "CNI DEL refused") {
		t.Errorf("rm with a failing teardown: stderr %q does not say what failed", r.Stderr)
	}
	phases := e.podDirPhases(uuid)
	if len(phases) != 1 {
		t.Fatalf("failed rm: pod in %v, want kept", phases)
	}
	// Something still mounted in the pod directory goes too.
	dir := filepath.Join(e.podsPhaseDir(phases[0]), uuid)
	mnt := filepath.Join(dir, "leftover")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	r = e.Run("rm", "--force", uuid)
	if r.Exit != 0 || !strings.Contains(r.Stdout, uuid) || !strings.Contains(r.Stderr, "CNI DEL refused") {
		t.Errorf("rm --force: exit %d, stdout %q, stderr %q; want 0, the UUID, and a warning saying what failed", r.Exit, r.Stdout, r.Stderr)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if left, err := mounts.Below(f, dir); err != nil || len(left) != 0 {
		t.Errorf("rm --force left mounts %v (%v)", left, err)
	}
	e.requireNoPods()
}
