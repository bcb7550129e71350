package pod

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/lock"
)

// The helper process: when POD_TEST_HELPER is set, TestHelperProcess acts
// as another rkt process instead of a test (see helperCmd).
const helperEnv = "POD_TEST_HELPER"

// helperCmd returns a command that re-runs the test binary as a helper
// doing what, in podsDir, on uuid.
func helperCmd(t *testing.T, what, podsDir, uuid string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+what, "POD_TEST_DIR="+podsDir, "POD_TEST_UUID="+uuid)
	return cmd
}

// TestHelperProcess is not a test: it is the other process of the
// cross-process tests.
//
//	lock:   lock the pod, print "locked", then sleep until killed
//	to-run: wait for a line on stdin, then Get + TryLock + ToRun the pod;
//	        print "won" or "lost: <error>"
func TestHelperProcess(t *testing.T) {
	what := os.Getenv(helperEnv)
	if what == "" {
		t.Skip("only run as a helper process")
	}
	dir, uuid := os.Getenv("POD_TEST_DIR"), os.Getenv("POD_TEST_UUID")
	switch what {
	case "lock":
		p, err := Get(dir, uuid)
		if err == nil {
			err = p.TryLock()
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
	case "to-run":
		bufio.NewReader(os.Stdin).ReadString('\n')
		if err := getLockRun(dir, uuid); err != nil {
			fmt.Println("lost:", err)
		} else {
			fmt.Println("won")
		}
	}
	os.Exit(0)
}

// getLockRun is what rkt run-prepared does with the state machine.
func getLockRun(dir, uuid string) error {
	p, err := Get(dir, uuid)
	if err != nil {
		return err
	}
	if p.Phase != PhasePrepared {
		return fmt.Errorf("pod is %s: %w", p.State(), ErrBadState)
	}
	if err := p.TryLock(); err != nil {
		return err
	}
	defer p.Unlock()
	return p.ToRun()
}

// must fails the test at once on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newPrepared creates a pod and moves it to prepared/ (unlocked).
func newPrepared(t *testing.T, dir string) *Pod {
	t.Helper()
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.ToPrepared())
	return p
}

// phasesOf returns the phases holding a directory for uuid.
func phasesOf(t *testing.T, dir, uuid string) []Phase {
	t.Helper()
	var in []Phase
	for _, ph := range Phases {
		if _, err := os.Lstat(filepath.Join(dir, string(ph), uuid)); err == nil {
			in = append(in, ph)
		}
	}
	return in
}

func requireIn(t *testing.T, dir, uuid string, want Phase) {
	t.Helper()
	if got := phasesOf(t, dir, uuid); len(got) != 1 || got[0] != want {
		t.Fatalf("pod %s is in %v, want [%s]", uuid, got, want)
	}
}

// lockedByOther reports whether a lock on path conflicts with a shared one
// taken through a separate open file (flock locks are per open file).
func lockedByOther(t *testing.T, path string) bool {
	t.Helper()
	l, err := lock.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.TryShared()
	if err != nil && !errors.Is(err, lock.ErrLocked) {
		t.Fatal(err)
	}
	return err != nil
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewUUID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		u := NewUUID()
		if !uuidRe.MatchString(u) {
			t.Fatalf("NewUUID() = %q, not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("NewUUID() repeated %s", u)
		}
		seen[u] = true
	}
}

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pods")
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unlock()
	for _, ph := range Phases {
		if fi, err := os.Stat(filepath.Join(dir, string(ph))); err != nil || !fi.IsDir() {
			t.Errorf("phase directory %s missing after Create: %v", ph, err)
		}
	}
	if !uuidRe.MatchString(p.UUID) {
		t.Errorf("UUID %q", p.UUID)
	}
	if p.Phase != PhasePrepare || p.Path() != filepath.Join(dir, "prepare", p.UUID) {
		t.Errorf("new pod: phase %s, path %s", p.Phase, p.Path())
	}
	requireIn(t, dir, p.UUID, PhasePrepare)
	if !p.Locked || p.LockFile() == nil || !lockedByOther(t, p.Path()) {
		t.Errorf("a new pod must be locked by its creator")
	}
	if s := p.State(); s != StatePreparing {
		t.Errorf("new pod state %q, want %q", s, StatePreparing)
	}
	q, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Unlock()
	if q.UUID == p.UUID {
		t.Errorf("two pods got UUID %s", p.UUID)
	}
	// The creator releases the lock: the pod is an aborted prepare.
	p.Unlock()
	if p.LockFile() != nil || lockedByOther(t, p.Path()) {
		t.Errorf("Unlock left the pod locked")
	}
	g, err := Get(dir, p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if g.State() != StateAbortedPrepare {
		t.Errorf("unlocked pod in prepare/: state %q, want %q", g.State(), StateAbortedPrepare)
	}
}

func TestCreateFailsOnUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	must(t, os.WriteFile(file, nil, 0o644))
	if _, err := Create(file); err == nil {
		t.Fatal("Create in a path that is a file succeeded")
	}
}

func TestLegalTransitions(t *testing.T) {
	dir := t.TempDir()
	// prepare -> prepared -> run -> exited-garbage -> removed.
	p := newPrepared(t, dir)
	requireIn(t, dir, p.UUID, PhasePrepared)
	if p.LockFile() != nil || lockedByOther(t, p.Path()) {
		t.Errorf("ToPrepared must release the lock")
	}
	must(t, p.TryLock())
	must(t, p.ToRun())
	requireIn(t, dir, p.UUID, PhaseRun)
	if !lockedByOther(t, p.Path()) {
		t.Errorf("the lock must survive the rename to run/")
	}
	p.Unlock()
	must(t, p.TryLock())
	must(t, p.ToExitedGarbage())
	requireIn(t, dir, p.UUID, PhaseExitedGarbage)
	must(t, p.Remove())
	p.Unlock()
	if got := phasesOf(t, dir, p.UUID); len(got) != 0 {
		t.Errorf("removed pod still in %v", got)
	}

	// prepare -> run (rkt run), and prepare -> garbage (failed prepare).
	q, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, q.ToRun())
	requireIn(t, dir, q.UUID, PhaseRun)
	q.Unlock()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, r.ToGarbage())
	requireIn(t, dir, r.UUID, PhaseGarbage)
	must(t, r.Remove())
	r.Unlock()
	// prepared -> garbage (expired).
	s := newPrepared(t, dir)
	must(t, s.TryLock())
	must(t, s.ToGarbage())
	requireIn(t, dir, s.UUID, PhaseGarbage)
	s.Unlock()
}

func TestIllegalTransitionsRefused(t *testing.T) {
	dir := t.TempDir()
	type step struct {
		name string
		fn   func(*Pod) error
	}
	toPrepared := step{"ToPrepared", (*Pod).ToPrepared}
	toRun := step{"ToRun", (*Pod).ToRun}
	toGarbage := step{"ToGarbage", (*Pod).ToGarbage}
	toExited := step{"ToExitedGarbage", (*Pod).ToExitedGarbage}
	remove := step{"Remove", (*Pod).Remove}

	// setup brings a new pod to a phase, holding its lock.
	setups := map[Phase]func() *Pod{
		PhasePrepare: func() *Pod {
			p, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		PhasePrepared: func() *Pod {
			p := newPrepared(t, dir)
			must(t, p.TryLock())
			return p
		},
		PhaseRun: func() *Pod {
			p, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			must(t, p.ToRun())
			return p
		},
		PhaseExitedGarbage: func() *Pod {
			p, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			must(t, p.ToRun())
			must(t, p.ToExitedGarbage())
			return p
		},
		PhaseGarbage: func() *Pod {
			p, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			must(t, p.ToGarbage())
			return p
		},
	}
	illegal := map[Phase][]step{
		PhasePrepare:       {toExited, remove},
		PhasePrepared:      {toPrepared, toExited, remove},
		PhaseRun:           {toPrepared, toRun, toGarbage, remove},
		PhaseExitedGarbage: {toPrepared, toRun, toGarbage, toExited},
		PhaseGarbage:       {toPrepared, toRun, toGarbage, toExited},
	}
	for from, steps := range illegal {
		for _, s := range steps {
			p := setups[from]()
			err := s.fn(p)
			if !errors.Is(err, ErrBadState) {
				t.Errorf("%s from %s: got %v, want ErrBadState", s.name, from, err)
			}
			if p.Phase != from {
				t.Errorf("%s from %s: Phase changed to %s", s.name, from, p.Phase)
			}
			requireIn(t, dir, p.UUID, from)
			p.Unlock()
		}
	}
	// ToRun without the lock is refused even from prepared/.
	p := newPrepared(t, dir)
	if err := p.ToRun(); !errors.Is(err, ErrBadState) {
		t.Errorf("ToRun without the lock: got %v, want ErrBadState", err)
	}
	requireIn(t, dir, p.UUID, PhasePrepared)
}

func TestStateForEachPhase(t *testing.T) {
	want := map[Phase][2]State{ // unlocked, locked
		PhaseEmbryo:        {StateEmbryo, StateEmbryo},
		PhasePrepare:       {StateAbortedPrepare, StatePreparing},
		PhasePrepared:      {StatePrepared, StatePrepared},
		PhaseRun:           {StateExited, StateRunning},
		PhaseExitedGarbage: {StateExitedGarbage, StateExitedDeleting},
		PhaseGarbage:       {StateGarbage, StateDeleting},
	}
	dir := t.TempDir()
	for _, ph := range Phases {
		must(t, os.MkdirAll(filepath.Join(dir, string(ph)), 0o750))
	}
	for ph, states := range want {
		for i, locked := range []bool{false, true} {
			uuid := NewUUID()
			path := filepath.Join(dir, string(ph), uuid)
			must(t, os.Mkdir(path, 0o750))
			var held *lock.Lock
			if locked {
				// Another holder: a separate open file, as another process.
				l, err := lock.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				must(t, l.TryExclusive())
				held = l
			}
			p, err := Get(dir, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if p.Phase != ph || p.Locked != locked || p.State() != states[i] {
				t.Errorf("pod in %s, locked=%t: Get gives phase %s locked=%t state %q, want state %q",
					ph, locked, p.Phase, p.Locked, p.State(), states[i])
			}
			pods, err := List(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range pods {
				if q.UUID == uuid && q.State() != states[i] {
					t.Errorf("pod in %s, locked=%t: List gives state %q, want %q", ph, locked, q.State(), states[i])
				}
			}
			// Once the holder lets go, the pod reads as unlocked.
			held.Close()
			if p, err = Get(dir, uuid); err != nil || p.Locked {
				t.Errorf("pod in %s after its holder let go: %v, locked=%v", ph, err, p != nil && p.Locked)
			}
			must(t, os.Remove(path))
		}
	}
}

func TestGetByPrefix(t *testing.T) {
	dir := t.TempDir()
	for _, ph := range Phases {
		must(t, os.MkdirAll(filepath.Join(dir, string(ph)), 0o750))
	}
	uuids := map[string]Phase{
		"aaaa1111-0000-4000-8000-000000000001": PhaseRun,
		"aaaa2222-0000-4000-8000-000000000002": PhasePrepared,
		"bbbb1111-0000-4000-8000-000000000003": PhaseExitedGarbage,
	}
	for u, ph := range uuids {
		must(t, os.Mkdir(filepath.Join(dir, string(ph), u), 0o750))
	}
	for _, c := range []struct {
		prefix, want string
		phase        Phase
	}{
		{"aaaa1", "aaaa1111-0000-4000-8000-000000000001", PhaseRun},
		{"AAAA2", "aaaa2222-0000-4000-8000-000000000002", PhasePrepared},
		{" b ", "bbbb1111-0000-4000-8000-000000000003", PhaseExitedGarbage},
		{"aaaa1111-0000-4000-8000-000000000001", "aaaa1111-0000-4000-8000-000000000001", PhaseRun},
	} {
		p, err := Get(dir, c.prefix)
		if err != nil {
			t.Errorf("Get(%q): %v", c.prefix, err)
			continue
		}
		if p.UUID != c.want || p.Phase != c.phase {
			t.Errorf("Get(%q) = %s in %s, want %s in %s", c.prefix, p.UUID, p.Phase, c.want, c.phase)
		}
	}
	_, err := Get(dir, "aaaa")
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "aaaa1111") || !strings.Contains(err.Error(), "aaaa2222") {
		t.Errorf("Get of an ambiguous prefix: %v, want ErrAmbiguous naming both pods", err)
	}
	if _, err := Get(dir, "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing prefix: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "  ", "../run", "aaaa1111/..", "."} {
		if p, err := Get(dir, bad); err == nil {
			t.Errorf("Get(%q) = %s, want an error", bad, p.UUID)
		}
	}
	// A pods directory that does not exist yet holds no pods.
	if _, err := Get(filepath.Join(dir, "none"), "aaaa"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get in a missing pods dir: %v, want ErrNotFound", err)
	}
}

func TestListSorted(t *testing.T) {
	dir := t.TempDir()
	if pods, err := List(filepath.Join(dir, "missing")); err != nil || len(pods) != 0 {
		t.Errorf("List of a missing pods dir: %v, %v", pods, err)
	}
	var made []string
	for i := 0; i < 5; i++ {
		p := newPrepared(t, dir)
		made = append(made, p.UUID)
	}
	pods, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != len(made) {
		t.Fatalf("List: %d pods, want %d", len(pods), len(made))
	}
	for i := 1; i < len(pods); i++ {
		if pods[i-1].UUID >= pods[i].UUID {
			t.Errorf("List not sorted by UUID: %s before %s", pods[i-1].UUID, pods[i].UUID)
		}
	}
}

// TestListFollowsMovedPod simulates a pod renamed between List reading a
// phase directory and looking at the entry: the entry it read no longer
// opens (a dangling symlink stands for the stale name), and the pod is
// found in its new phase.
func TestListFollowsMovedPod(t *testing.T) {
	dir := t.TempDir()
	p := newPrepared(t, dir)
	must(t, p.TryLock())
	must(t, p.ToRun())
	defer p.Unlock()
	stale := filepath.Join(dir, "prepare", p.UUID)
	must(t, os.Symlink(filepath.Join(dir, "nowhere", p.UUID), stale))
	// A pod that vanished altogether is skipped.
	gone := NewUUID()
	must(t, os.Symlink(filepath.Join(dir, "nowhere", gone), filepath.Join(dir, "prepared", gone)))
	pods, err := List(dir)
	if err != nil {
		t.Fatalf("List with a moved and a vanished pod: %v", err)
	}
	if len(pods) != 1 || pods[0].UUID != p.UUID || pods[0].Phase != PhaseRun || pods[0].State() != StateRunning {
		for _, q := range pods {
			t.Logf("listed %s in %s (%s)", q.UUID, q.Phase, q.State())
		}
		t.Fatalf("List: want only pod %s, running in run/", p.UUID)
	}
}

// TestListWhileRenaming lists repeatedly while other goroutines move pods
// through their phases: every listing has every pod exactly once.
func TestListWhileRenaming(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	pods := make([]*Pod, n)
	for i := range pods {
		pods[i] = newPrepared(t, dir)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range pods {
			if err := p.TryLock(); err != nil {
				t.Error(err)
				return
			}
			if err := p.ToRun(); err != nil {
				t.Error(err)
				return
			}
			if err := p.ToExitedGarbage(); err != nil {
				t.Error(err)
				return
			}
			p.Unlock()
		}
	}()
	defer func() { <-done }() // before t.TempDir's removal, even on failure
	listings := 0
	for running := true; running; listings++ {
		select {
		case <-done:
			running = false
		default:
		}
		got, err := List(dir)
		if err != nil {
			t.Fatalf("List while pods move: %v", err)
		}
		seen := map[string]int{}
		for _, q := range got {
			seen[q.UUID]++
		}
		for _, p := range pods {
			if seen[p.UUID] != 1 {
				t.Fatalf("listing %d shows pod %s %d times, want once", listings, p.UUID, seen[p.UUID])
			}
		}
		if len(got) != n {
			t.Fatalf("listing %d: %d pods, want %d", listings, len(got), n)
		}
	}
	t.Logf("%d listings", listings)
}

func TestWaitExitWakesWhenHolderReleases(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.ToRun())
	// A second view of the pod, as rkt status --wait has.
	w, err := Get(dir, p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		woke <- w.WaitExit(ctx)
	}()
	select {
	case err := <-woke:
		t.Fatalf("WaitExit returned (%v) while the pod's lock was held", err)
	case <-time.After(150 * time.Millisecond):
	}
	released := time.Now()
	p.Unlock()
	select {
	case err := <-woke:
		if err != nil {
			t.Fatalf("WaitExit: %v", err)
		}
		if d := time.Since(released); d > time.Second {
			t.Errorf("WaitExit woke %s after the release", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitExit did not wake after the lock was released")
	}
	// An unlocked pod: at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w.WaitExit(ctx); err != nil {
		t.Errorf("WaitExit on an exited pod: %v", err)
	}
}

func TestWaitExitTimesOut(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unlock()
	w, err := Get(dir, p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.WaitExit(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitExit on a held pod with a short deadline: %v, want DeadlineExceeded", err)
	}
	// After the timed-out wait, the holder still holds the lock alone.
	if !lockedByOther(t, p.Path()) {
		t.Errorf("the pod lost its lock")
	}
	// A pod that does not exist any more.
	gone := &Pod{UUID: NewUUID(), Phase: PhaseRun, pods: dir}
	if err := gone.WaitExit(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("WaitExit on a missing pod: %v, want ErrNotFound", err)
	}
}

// TestWaitExitWakesWhenHolderKilled: the lock holder is another process,
// killed with SIGKILL; the kernel drops its lock and the waiter wakes, and
// the pod reads as exited.
func TestWaitExitWakesWhenHolderKilled(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.ToRun())
	p.Unlock()
	cmd := helperCmd(t, "lock", dir, p.UUID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	must(t, cmd.Start())
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q", line)
	}
	if q, err := Get(dir, p.UUID); err != nil || q.State() != StateRunning {
		t.Fatalf("pod locked by another process: %v, %v", q, err)
	}
	woke := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		woke <- p.WaitExit(ctx)
	}()
	select {
	case err := <-woke:
		t.Fatalf("WaitExit returned (%v) while another process held the lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	select {
	case err := <-woke:
		if err != nil {
			t.Fatalf("WaitExit after the holder was killed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitExit did not wake after the holder was killed")
	}
	if q, err := Get(dir, p.UUID); err != nil || q.State() != StateExited {
		t.Errorf("pod whose holder was killed: %v, %v, want exited", q, err)
	}
}

// TestToRunRaceGoroutines: two goroutines run one prepared pod as rkt
// run-prepared does; exactly one wins, each time.
func TestToRunRaceGoroutines(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 200; round++ {
		p := newPrepared(t, dir)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = getLockRun(dir, p.UUID)
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrBadState), errors.Is(err, lock.ErrLocked), errors.Is(err, ErrNotFound):
			default:
				t.Errorf("round %d: loser's error %v is none of ErrBadState, ErrLocked, ErrNotFound", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d winners (%v), want exactly 1", round, won, errs)
		}
		requireIn(t, dir, p.UUID, PhaseRun)
	}
}

// TestToRunRaceProcesses: the same with two processes.
func TestToRunRaceProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	for round := 0; round < 8; round++ {
		p := newPrepared(t, dir)
		type helper struct {
			cmd *exec.Cmd
			in  *os.File
			out strings.Builder
		}
		hs := make([]*helper, 2)
		for i := range hs {
			h := &helper{cmd: helperCmd(t, "to-run", dir, p.UUID)}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			h.cmd.Stdin, h.in = r, w
			h.cmd.Stdout = &h.out
			must(t, h.cmd.Start())
			r.Close()
			hs[i] = h
		}
		// Both are started and waiting: release them together.
		for _, h := range hs {
			h.in.Write([]byte("go\n"))
			h.in.Close()
		}
		won := 0
		for i, h := range hs {
			if err := h.cmd.Wait(); err != nil {
				t.Fatalf("helper %d: %v", i, err)
			}
			switch out := strings.TrimSpace(h.out.String()); {
			case out == "won":
				won++
			case strings.HasPrefix(out, "lost: "):
			default:
				t.Errorf("round %d, helper %d printed %q", round, i, out)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d processes won (%q, %q), want exactly 1", round, won, hs[0].out.String(), hs[1].out.String())
		}
		requireIn(t, dir, p.UUID, PhaseRun)
	}
}

func TestTimes(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unlock()
	if !p.Created().IsZero() || !p.Started().IsZero() {
		t.Errorf("times before pod and pid exist: %v %v", p.Created(), p.Started())
	}
	before := time.Now().Add(-time.Second)
	for _, f := range []string{"pod", "pid"} {
		must(t, os.WriteFile(filepath.Join(p.Path(), f), nil, 0o644))
	}
	if p.Created().Before(before) || p.Started().Before(before) {
		t.Errorf("Created %v, Started %v: want the files' times", p.Created(), p.Started())
	}
	must(t, p.ToRun())
	must(t, p.ToExitedGarbage())
	if m := p.MarkedAt(); m.Before(before) || m.After(time.Now().Add(time.Second)) {
		t.Errorf("MarkedAt %v: want the time of the last rename", m)
	}
	if !p.Created().After(before) {
		t.Errorf("Created() lost after renames")
	}
}

// TestTryLockHeldByOtherProcess: while another process holds a pod's lock
// (a running pod's stage1 does), TryLock fails with ErrLocked and leaves
// the pod unlocked for us; once the holder is gone, TryLock succeeds.
func TestTryLockHeldByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.ToRun())
	p.Unlock()
	cmd := helperCmd(t, "lock", dir, p.UUID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	must(t, cmd.Start())
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q", line)
	}
	q, err := Get(dir, p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	err = q.TryLock()
	if err == nil {
		t.Fatal("TryLock succeeded while another process holds the pod's lock")
	}
	if !errors.Is(err, lock.ErrLocked) {
		t.Errorf("TryLock: %v, want ErrLocked", err)
	}
	if q.LockFile() != nil {
		t.Error("after a failed TryLock we hold a lock file")
	}
	if q.State() != StateRunning {
		t.Errorf("pod locked by another process reads as %s, want running", q.State())
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	r, err := Get(dir, p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.TryLock(); err != nil {
		t.Fatalf("TryLock once the holder was killed: %v", err)
	}
	r.Unlock()
}
