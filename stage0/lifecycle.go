package stage0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/mounts"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// AppStatus is one app of a pod as rkt list/status show it.
type AppStatus struct {
	Name     string `json:"name"`
	Image    string `json:"image_name"`
	ImageID  string `json:"image_id"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// Reason says why the app ended, when stage1 knows ("out of
	// memory").
	Reason  string    `json:"exit_reason,omitempty"`
	Started time.Time `json:"started_at,omitzero"`
}

// PodStatus is a pod as rkt list/status show it.
type PodStatus struct {
	UUID     string      `json:"name"`
	State    pod.State   `json:"state"`
	Apps     []AppStatus `json:"apps"`
	Created  time.Time   `json:"created_at,omitzero"`
	Started  time.Time   `json:"started_at,omitzero"`
	PID      int         `json:"pid,omitempty"`
	Networks []string    `json:"networks,omitempty"` // name:IP
}

// networksOf reads the networks and addresses from net-info.json (written
// by stage1); "" entries of networks without an address are skipped.
func networksOf(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, "net-info.json"))
	if err != nil {
		return nil
	}
	var nis []struct {
		Name string `json:"netName"`
		IP   string `json:"ip"`
	}
	if json.Unmarshal(data, &nis) != nil {
		return nil
	}
	var out []string
	for _, n := range nis {
		if n.IP != "" {
			out = append(out, n.Name+":"+n.IP)
		}
	}
	return out
}

// Status reads a pod's status from its directory. It tolerates a pod that
// moves meanwhile (fields it could not read stay empty).
func Status(p *pod.Pod) *PodStatus {
	st := &PodStatus{UUID: p.UUID, State: p.State(), Created: p.Created(), Started: p.Started()}
	dir := p.Path()
	if data, err := os.ReadFile(filepath.Join(dir, stage1abi.PidFile)); err == nil {
		st.PID, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	st.Networks = networksOf(dir)
	data, err := os.ReadFile(filepath.Join(dir, "pod"))
	if err != nil {
		return st
	}
	var pm schema.PodManifest
	if appcjson.Unmarshal(data, &pm) != nil {
		return st
	}
	statusDir := filepath.Join(dir, exitstatus.Dir)
	for _, ra := range pm.Apps {
		as := AppStatus{Name: ra.Name.String(), ImageID: ra.Image.ID.String()}
		if ra.Image.Name != nil {
			as.Image = ra.Image.Name.String()
		}
		if n, reason, ok := exitstatus.Read(filepath.Join(statusDir, as.Name)); ok {
			as.ExitCode, as.Reason = &n, reason
		}
		if fi, err := os.Stat(filepath.Join(statusDir, as.Name+"-started")); err == nil {
			as.Started = fi.ModTime()
		}
		st.Apps = append(st.Apps, as)
	}
	return st
}

// ExitCode is the pod's overall exit code: the first failing app's, else 0.
func (s *PodStatus) ExitCode() int {
	for _, a := range s.Apps {
		if a.ExitCode != nil && *a.ExitCode != 0 {
			return *a.ExitCode
		}
	}
	return 0
}

// Manifest returns a pod's raw manifest.
func Manifest(p *pod.Pod) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(p.Path(), "pod"))
	if err != nil {
		return nil, fmt.Errorf("pod %s has no manifest (yet): %w", p.UUID, err)
	}
	return data, nil
}

// StopOptions steer Stop.
type StopOptions struct {
	// Force: SIGKILL the apps at once.
	Force bool
	// Timeout, when above zero, is the time the apps get between SIGTERM
	// and SIGKILL for this stop, in place of the pod's (needs a stage1
	// of interface version stage1abi.StopTimeoutVersion).
	Timeout time.Duration
}

// Stop runs the pod's stage1 stop entrypoint.
func Stop(ctx context.Context, p *pod.Pod, opts StopOptions) error {
	if p.State() != pod.StateRunning {
		return fmt.Errorf("pod %s is %s, not running", p.UUID, p.State())
	}
	args := []string{}
	if opts.Force {
		args = append(args, "--force")
	}
	if opts.Timeout > 0 && !opts.Force {
		m, _, err := ReadStage1(p.Path())
		if err != nil {
			return err
		}
		version := 1
		if v, ok := m.Annotations.Get(AnnoInterface); ok {
			version, _ = strconv.Atoi(v)
		}
		if version < stage1abi.StopTimeoutVersion {
			return fmt.Errorf("pod %s: its stage1 (interface version %d) takes no stop timeout (version %d does): stop it without --timeout", p.UUID, version, stage1abi.StopTimeoutVersion)
		}
		args = append(args, "--timeout="+opts.Timeout.String())
	}
	return runEntrypoint(ctx, p, AnnoStop, append(args, p.UUID), nil)
}

func runEntrypoint(ctx context.Context, p *pod.Pod, anno string, args []string, extraEnv []string) error {
	m, root, err := ReadStage1(p.Path())
	if err != nil {
		return err
	}
	ep, err := EntrypointOf(m, root, anno)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, ep, args...)
	cmd.Args[0] = ep
	cmd.Dir = p.Path()
	cmd.Env = append(os.Environ(), extraEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stage1 %s of pod %s: %v: %s", filepath.Base(ep), p.UUID, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// GCOptions steer GC.
type GCOptions struct {
	GracePeriod    time.Duration
	ExpirePrepared time.Duration
	MarkOnly       bool
	Debug          bool
	LocalConfig    string
	// Force removes a pod whose stage1 gc fails at once (rkt rm
	// --force), instead of after MaxGCAttempts failed sweeps.
	Force bool
}

// MaxGCAttempts is how many sweeps may fail in a pod's stage1 gc (a CNI
// DEL the plugin refuses, a cgroup that will not go) before gc removes the
// pod anyway: a failed teardown must not keep a pod forever. The count is
// kept in the pod directory's GCAttemptsFile.
const MaxGCAttempts = 3

// GCAttemptsFile, in a garbage pod's directory, counts its failed sweeps.
const GCAttemptsFile = "gc-attempts"

// GCReport lists what GC did, for printing.
type GCReport struct {
	Marked  []string
	Removed []string
	Failed  map[string]error
	// Incomplete are pods removed although their stage1 gc failed
	// (after MaxGCAttempts, or with Force): what it could not clean.
	Incomplete map[string]error
}

// Collected reports whether GC collected everything it should have: it
// did not when a pod failed for another reason than being busy (locked)
// or taken by a concurrent gc, or was removed with parts of its teardown
// failed.
func (r *GCReport) Collected() bool {
	for _, e := range r.Failed {
		if !Benign(e) {
			return false
		}
	}
	return len(r.Incomplete) == 0
}

// Benign reports whether a sweep error only means "not now": the pod is
// busy (locked: running, or another gc has it) or another gc already
// moved or removed it.
func Benign(err error) bool {
	return errors.Is(err, lock.ErrLocked) || errors.Is(err, pod.ErrNotFound) || errors.Is(err, pod.ErrBadState)
}

// IncompleteError is Sweep's error for a pod it removed although its
// stage1 gc failed.
type IncompleteError struct {
	UUID string
	Err  error // the stage1 gc failure
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("pod %s removed, but its teardown failed (check for leftover network interfaces, addresses or cgroups): %v", e.UUID, e.Err)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// GC is rkt gc's two-phase mark and sweep. Mark: exited pods move to
// exited-garbage (starting their grace period), aborted prepares and
// expired prepared pods to garbage. Sweep: garbage, and exited-garbage
// pods older than the grace period, are cleaned by their stage1 gc
// entrypoint, unmounted and deleted. Pods it cannot lock are left for the
// next run.
func GC(ctx context.Context, podsDir string, opts GCOptions) (*GCReport, error) {
	rep := &GCReport{Failed: map[string]error{}, Incomplete: map[string]error{}}
	pods, err := pod.List(podsDir)
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		var err error
		switch p.State() {
		case pod.StateExited:
			err = withLock(p, p.ToExitedGarbage)
			if err == nil {
				unregisterMDS(ctx, p)
			}
		case pod.StateAbortedPrepare:
			err = withLock(p, p.ToGarbage)
		case pod.StatePrepared:
			if time.Since(p.Created()) > opts.ExpirePrepared {
				err = withLock(p, p.ToGarbage)
			} else {
				continue
			}
		default:
			continue
		}
		if err != nil {
			rep.Failed[p.UUID] = err
			continue
		}
		rep.Marked = append(rep.Marked, p.UUID)
	}
	if opts.MarkOnly {
		return rep, nil
	}
	pods, err = pod.List(podsDir)
	if err != nil {
		return rep, err
	}
	for _, p := range pods {
		switch p.State() {
		case pod.StateExitedGarbage:
			if time.Since(p.MarkedAt()) < opts.GracePeriod {
				continue
			}
		case pod.StateGarbage:
		default:
			continue
		}
		if err := Sweep(ctx, p, opts); err != nil {
			var ie *IncompleteError
			if errors.As(err, &ie) {
				rep.Incomplete[p.UUID] = err
				rep.Removed = append(rep.Removed, p.UUID)
			} else {
				rep.Failed[p.UUID] = err
			}
			continue
		}
		rep.Removed = append(rep.Removed, p.UUID)
	}
	return rep, nil
}

func withLock(p *pod.Pod, fn func() error) error {
	if err := p.TryLock(); err != nil {
		return err
	}
	defer p.Unlock()
	return fn()
}

// Sweep deletes one garbage pod: stage1 gc, unmount, remove. When the
// stage1 gc fails, the pod stays for the next sweep, and the error says
// which attempt this was; the MaxGCAttempts-th failure (or the first, with
// opts.Force) removes the pod anyway, with what stage1 gc could clean
// cleaned and nothing left mounted, and returns an *IncompleteError.
func Sweep(ctx context.Context, p *pod.Pod, opts GCOptions) error {
	if err := p.TryLock(); err != nil {
		return err
	}
	defer p.Unlock()
	var gcErr error
	if m, root, err := ReadStage1(p.Path()); err == nil && stage1Present(m, root) {
		args := []string{}
		if opts.Debug {
			args = append(args, "--debug")
		}
		if opts.LocalConfig != "" {
			args = append(args, "--local-config="+opts.LocalConfig)
		}
		gcErr = runEntrypoint(ctx, p, AnnoGC, append(args, p.UUID), nil)
	}
	if gcErr != nil && ctx.Err() != nil {
		return gcErr // interrupted: not the pod's fault, not an attempt
	}
	if gcErr != nil && !opts.Force {
		n := countGCAttempt(p.Path())
		if n < MaxGCAttempts {
			return fmt.Errorf("%w (attempt %d of %d: gc tries again next time, then removes the pod anyway; rkt rm --force %s removes it now)", gcErr, n, MaxGCAttempts, p.UUID)
		}
	}
	if err := mounts.UnmountBelow(p.Path(), nil); err != nil {
		return err
	}
	unregisterMDS(ctx, p)
	if err := p.Remove(); err != nil {
		return err
	}
	if gcErr != nil {
		return &IncompleteError{UUID: p.UUID, Err: gcErr}
	}
	return nil
}

// countGCAttempt adds one failed sweep to the pod's count and returns the
// count. A count it cannot read starts again at 1; one it cannot write
// counts as the last attempt, so that the pod still goes.
func countGCAttempt(dir string) int {
	path := filepath.Join(dir, GCAttemptsFile)
	n := 0
	if data, err := os.ReadFile(path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	n++
	if os.WriteFile(path, []byte(strconv.Itoa(n)+"\n"), 0o600) != nil {
		return MaxGCAttempts
	}
	return n
}

// Remove deletes an exited (or aborted, or garbage) pod at once, as rkt rm.
func Remove(ctx context.Context, p *pod.Pod, opts GCOptions) error {
	switch p.State() {
	case pod.StateExited:
		if err := withLock(p, p.ToExitedGarbage); err != nil {
			return err
		}
	case pod.StateAbortedPrepare, pod.StatePrepared:
		if err := withLock(p, p.ToGarbage); err != nil {
			return err
		}
	case pod.StateExitedGarbage, pod.StateGarbage:
	default:
		return fmt.Errorf("pod %s is %s: stop it first (rkt stop %s)", p.UUID, p.State(), p.UUID)
	}
	return Sweep(ctx, p, opts)
}

// Enter runs command in an app of a running pod through the stage1 enter
// entrypoint, replacing this process (so the terminal passes straight
// through). app may be empty when the pod has one app.
func Enter(p *pod.Pod, app string, command []string) error {
	if p.State() != pod.StateRunning {
		return fmt.Errorf("pod %s is %s, not running", p.UUID, p.State())
	}
	st := Status(p)
	if app == "" {
		if len(st.Apps) != 1 {
			names := make([]string, len(st.Apps))
			for i, a := range st.Apps {
				names[i] = a.Name
			}
			return fmt.Errorf("pod %s has %d apps (%s): choose one with --app", p.UUID, len(st.Apps), strings.Join(names, ", "))
		}
		app = st.Apps[0].Name
	}
	appProc, err := proc.Load(filepath.Join(p.Path(), stage1abi.AppPid(app)))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pod %s has no running app %q", p.UUID, app)
	}
	if err == nil {
		err = appProc.Check()
	}
	if errors.Is(err, proc.ErrExited) {
		return fmt.Errorf("app %q of pod %s has exited", app, p.UUID)
	}
	if err != nil {
		return fmt.Errorf("pod %s: find app %q's process: %w", p.UUID, app, err)
	}
	m, root, err := ReadStage1(p.Path())
	if err != nil {
		return err
	}
	ep, err := EntrypointOf(m, root, AnnoEnter)
	if err != nil {
		return err
	}
	if err := os.Chdir(p.Path()); err != nil {
		return err
	}
	args := append([]string{ep, "--pid=" + strconv.Itoa(appProc.Pid), "--appname=" + app, "--"}, command...)
	return fmt.Errorf("executing stage1 enter: %w", unix.Exec(ep, args, os.Environ()))
}

// stage1Present reports whether the pod's stage1 gc entrypoint can run. It
// cannot when the pod never got to run stage1 (a failed exec) or its image
// left the store; the pod directory is then removed without it.
func stage1Present(m *schema.ImageManifest, root string) bool {
	ep, err := EntrypointOf(m, root, AnnoGC)
	if err != nil || !filepath.IsAbs(ep) {
		return false
	}
	_, err = os.Stat(ep)
	return err == nil
}
