// Package pod is the on-disk pod state machine. A pod's state is the
// directory it sits in below <data dir>/pods plus whether that directory is
// flock'ed; every transition is an atomic rename(2) between phase
// directories, done only through the methods here:
//
//	embryo ──▶ prepare ──▶ prepared ──▶ run ──▶ exited-garbage ──▶ (deleted)
//	              │            │                       ▲
//	              ├────────────┴──▶ garbage ──▶ (deleted)
//	              └──────────────────▶ run  (rkt run: prepare and run at once)
//
// The lock holder is the process responsible for the pod: stage0 while it
// prepares, then stage1 (which inherits the descriptor) for as long as the
// pod runs. A pod in run/ whose lock is free has exited, even if it was
// killed with SIGKILL: the kernel dropped the lock with the last descriptor.
// Readers must tolerate a pod moving or vanishing underneath them (a lost
// rename race shows up as ENOENT).
package pod

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// Phase is a pod directory's parent directory name.
type Phase string

// The phase directories.
const (
	PhaseEmbryo        Phase = "embryo"
	PhasePrepare       Phase = "prepare"
	PhasePrepared      Phase = "prepared"
	PhaseRun           Phase = "run"
	PhaseExitedGarbage Phase = "exited-garbage"
	PhaseGarbage       Phase = "garbage"
)

// Phases lists every phase directory.
var Phases = []Phase{PhaseEmbryo, PhasePrepare, PhasePrepared, PhaseRun, PhaseExitedGarbage, PhaseGarbage}

// transitions are the legal renames.
var transitions = map[Phase][]Phase{
	PhaseEmbryo:        {PhasePrepare},
	PhasePrepare:       {PhasePrepared, PhaseRun, PhaseGarbage},
	PhasePrepared:      {PhaseRun, PhaseGarbage},
	PhaseRun:           {PhaseExitedGarbage},
	PhaseExitedGarbage: {},
	PhaseGarbage:       {},
}

// State is what rkt list and status print.
type State string

// The states, as rkt named them.
const (
	StateEmbryo         State = "embryo"
	StatePreparing      State = "preparing"
	StateAbortedPrepare State = "aborted prepare"
	StatePrepared       State = "prepared"
	StateRunning        State = "running"
	StateExited         State = "exited"
	StateExitedDeleting State = "exited deleting"
	StateExitedGarbage  State = "exited garbage"
	StateDeleting       State = "deleting"
	StateGarbage        State = "garbage"
)

// Errors.
var (
	ErrNotFound  = errors.New("pod not found")
	ErrAmbiguous = errors.New("ambiguous pod UUID")
	ErrBadState  = errors.New("pod is not in a state that allows this")
)

// permissionError explains a pods directory this user may not read:
// reading pods needs root, or membership in the group the data
// directory is shared with (docs/image-store.md, "Permissions").
func permissionError(err error) error {
	return fmt.Errorf("%w: reading pods needs root or membership in the rkt group", err)
}

// Pod is one pod directory.
type Pod struct {
	UUID  string
	Phase Phase
	pods  string // <data dir>/pods
	lock  *lock.Lock
	// Locked is whether someone held the pod's lock when it was looked at
	// (for pods found by Get/List; not updated afterwards).
	Locked bool
}

// Path returns the pod directory.
func (p *Pod) Path() string { return filepath.Join(p.pods, string(p.Phase), p.UUID) }

// State derives the state from the phase and the lock.
func (p *Pod) State() State {
	switch p.Phase {
	case PhaseEmbryo:
		return StateEmbryo
	case PhasePrepare:
		if p.Locked {
			return StatePreparing
		}
		return StateAbortedPrepare
	case PhasePrepared:
		return StatePrepared
	case PhaseRun:
		if p.Locked {
			return StateRunning
		}
		return StateExited
	case PhaseExitedGarbage:
		if p.Locked {
			return StateExitedDeleting
		}
		return StateExitedGarbage
	default:
		if p.Locked {
			return StateDeleting
		}
		return StateGarbage
	}
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Create makes a new pod: an embryo directory is created and locked, then
// renamed into prepare/. The caller holds the lock.
func Create(podsDir string) (*Pod, error) {
	for _, ph := range Phases {
		dir := filepath.Join(podsDir, string(ph))
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		if err := shareGroup(podsDir, dir); err != nil {
			return nil, err
		}
	}
	p := &Pod{UUID: NewUUID(), Phase: PhaseEmbryo, pods: podsDir}
	if err := os.Mkdir(p.Path(), 0o750); err != nil {
		return nil, err
	}
	if err := shareGroup(podsDir, p.Path()); err != nil {
		os.Remove(p.Path())
		return nil, err
	}
	l, err := lock.Open(p.Path())
	if err == nil {
		err = l.TryExclusive()
	}
	if err != nil {
		os.RemoveAll(p.Path())
		return nil, err
	}
	p.lock, p.Locked = l, true
	if err := p.moveTo(PhasePrepare); err != nil {
		l.Close()
		os.RemoveAll(p.Path())
		return nil, err
	}
	return p, nil
}

// moveTo renames the pod to another phase, if the transition is legal.
func (p *Pod) moveTo(to Phase) error {
	ok := false
	for _, t := range transitions[p.Phase] {
		if t == to {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("pod %s: %s → %s: %w", p.UUID, p.Phase, to, ErrBadState)
	}
	from := p.Path()
	dst := filepath.Join(p.pods, string(to), p.UUID)
	if err := os.Rename(from, dst); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pod %s moved away from %s meanwhile (another rkt won the race): %w", p.UUID, p.Phase, ErrBadState)
		}
		return err
	}
	p.Phase = to
	return nil
}

// ToPrepared finishes `rkt prepare`: the pod waits in prepared/, unlocked.
func (p *Pod) ToPrepared() error {
	if err := p.moveTo(PhasePrepared); err != nil {
		return err
	}
	p.Unlock()
	return nil
}

// ToRun moves a locked pod from prepare/ or prepared/ to run/. For a
// prepared pod the caller must have locked it with Lock first; exactly one
// of several racing callers wins the rename.
func (p *Pod) ToRun() error {
	if p.lock == nil {
		return fmt.Errorf("pod %s: ToRun without holding the lock: %w", p.UUID, ErrBadState)
	}
	return p.moveTo(PhaseRun)
}

// ToGarbage moves an aborted prepare or an expired prepared pod to
// garbage/. The caller must hold the lock.
func (p *Pod) ToGarbage() error { return p.moveTo(PhaseGarbage) }

// ToExitedGarbage marks an exited pod for collection. The rename sets the
// directory's ctime, which starts the gc grace period.
func (p *Pod) ToExitedGarbage() error { return p.moveTo(PhaseExitedGarbage) }

// TryLock takes the pod's exclusive lock without waiting.
func (p *Pod) TryLock() error {
	l, err := lock.Open(p.Path())
	if err != nil {
		return notFound(p.UUID, err)
	}
	// Readers (list, status) probe a pod with a shared lock held for a few
	// microseconds: retry briefly so that a probe is not taken for a holder.
	err = l.TryExclusive()
	for try := 0; errors.Is(err, lock.ErrLocked) && try < 5; try++ {
		time.Sleep(2 * time.Millisecond)
		err = l.TryExclusive()
	}
	if err != nil {
		l.Close()
		return fmt.Errorf("pod %s is in use by another process: %w", p.UUID, err)
	}
	// The directory may have been renamed or deleted between the open and
	// the lock: then we hold a lock on something no longer at this path.
	if !sameFile(l.File(), p.Path()) {
		l.Close()
		return fmt.Errorf("pod %s moved or was removed meanwhile: %w", p.UUID, ErrNotFound)
	}
	p.lock, p.Locked = l, true
	return nil
}

// LockFile returns the held lock's file (for handing it to stage1).
func (p *Pod) LockFile() *os.File {
	if p.lock == nil {
		return nil
	}
	return p.lock.File()
}

// Unlock releases the pod's lock.
func (p *Pod) Unlock() {
	if p.lock != nil {
		p.lock.Close()
		p.lock = nil
	}
}

// WaitExit blocks until the pod's lock is free (the pod exited) or ctx
// ends. It wakes up exactly when the last lock holder exits.
func (p *Pod) WaitExit(ctx context.Context) error {
	l, err := lock.Open(p.Path())
	if err != nil {
		return notFound(p.UUID, err)
	}
	defer l.Close()
	return l.Shared(ctx)
}

func notFound(uuid string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pod %s: %w (it may have been removed meanwhile)", uuid, ErrNotFound)
	}
	return err
}

// lookAt fills Locked by trying a shared lock.
func (p *Pod) lookAt() error {
	l, err := lock.Open(p.Path())
	if err != nil {
		return err
	}
	defer l.Close()
	p.Locked = errors.Is(l.TryShared(), lock.ErrLocked)
	return nil
}

// List returns every pod, sorted by UUID. Pods that move while being
// listed are looked for again in the next phase.
func List(podsDir string) ([]*Pod, error) {
	seen := map[string]bool{}
	var out []*Pod
	for _, ph := range Phases {
		ents, err := os.ReadDir(filepath.Join(podsDir, string(ph)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, permissionError(err)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if seen[e.Name()] {
				continue
			}
			p := &Pod{UUID: e.Name(), Phase: ph, pods: podsDir}
			if err := p.lookAt(); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					if q, err := find(podsDir, e.Name()); err == nil {
						p = q
					} else {
						continue
					}
				} else if errors.Is(err, os.ErrPermission) {
					return nil, permissionError(err)
				} else {
					return nil, err
				}
			}
			seen[p.UUID] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out, nil
}

// find looks for a full UUID in every phase.
func find(podsDir, uuid string) (*Pod, error) {
	for attempt := 0; attempt < 3; attempt++ {
		for _, ph := range Phases {
			p := &Pod{UUID: uuid, Phase: ph, pods: podsDir}
			err := p.lookAt()
			if err == nil {
				return p, nil
			}
			if errors.Is(err, os.ErrPermission) {
				return nil, fmt.Errorf("pod %s: %w", uuid, permissionError(err))
			}
		}
	}
	return nil, fmt.Errorf("pod %s: %w", uuid, ErrNotFound)
}

// Get finds a pod by UUID or unique UUID prefix.
func Get(podsDir, prefix string) (*Pod, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if prefix == "" || strings.ContainsAny(prefix, "/.") {
		return nil, fmt.Errorf("%q is not a pod UUID", prefix)
	}
	var matches []string
	seen := map[string]bool{}
	for _, ph := range Phases {
		ents, err := os.ReadDir(filepath.Join(podsDir, string(ph)))
		if errors.Is(err, os.ErrPermission) {
			// Not "no such pod": this user cannot see the pods.
			return nil, permissionError(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) && !seen[e.Name()] {
				seen[e.Name()] = true
				matches = append(matches, e.Name())
			}
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("no pod with UUID %s: %w (see rkt list)", prefix, ErrNotFound)
	case 1:
		return find(podsDir, matches[0])
	}
	return nil, fmt.Errorf("UUID %s matches %d pods (%s): %w; give more characters", prefix, len(matches), strings.Join(matches, ", "), ErrAmbiguous)
}

// shareGroup gives dir the group of podsDir: a pods directory shared with
// a group (root:rkt 0750, dist/tmpfiles.d/rkt.conf) lets its members read
// pods (list, status, cat-manifest), and nobody else (docs/image-store.md,
// "Permissions"). The pod directories
// themselves are not setgid, so nothing inside (an app's root file
// system) inherits the group.
func shareGroup(podsDir, dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(podsDir, &st); err != nil || st.Gid == uint32(os.Getegid()) {
		return nil
	}
	if err := os.Lchown(dir, -1, int(st.Gid)); err != nil {
		return fmt.Errorf("giving %s the group of %s: %w", dir, podsDir, err)
	}
	return nil
}

// Created returns the pod's creation time: when stage0 wrote its pod
// manifest (or its pod-created file, which pods of earlier versions have).
func (p *Pod) Created() time.Time {
	for _, f := range []string{"pod-created", "pod"} {
		if fi, err := os.Stat(filepath.Join(p.Path(), f)); err == nil {
			return fi.ModTime()
		}
	}
	return time.Time{}
}

// Started returns when stage1 wrote the pid file (zero if it has not).
func (p *Pod) Started() time.Time {
	fi, err := os.Stat(filepath.Join(p.Path(), stage1abi.PidFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// MarkedAt returns when the pod was moved to its current phase (the
// directory's ctime), which starts the gc grace period.
func (p *Pod) MarkedAt() time.Time {
	var st unix.Stat_t
	if err := unix.Stat(p.Path(), &st); err != nil {
		return time.Time{}
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
}

// Remove deletes a garbage pod's directory. The caller holds the lock
// and has run stage1 gc and unmounted what was left.
func (p *Pod) Remove() error {
	if p.Phase != PhaseGarbage && p.Phase != PhaseExitedGarbage {
		return fmt.Errorf("pod %s: removing a pod in %s: %w", p.UUID, p.Phase, ErrBadState)
	}
	return os.RemoveAll(p.Path())
}

// sameFile reports whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}
