package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/appc/spec/schema"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// RunOptions are the pod-level flags stage1's run entrypoint takes.
type RunOptions struct {
	Debug          bool
	Net            string // "host", "none", a list of networks, or "" for the stage1's default
	Hostname       string
	Interactive    bool
	IPC            string
	DisableCaps    bool
	DisablePaths   bool
	DisableSeccomp bool
	DNSConfMode    string
	LocalConfig    string
	// LogSize is the size of each app's log file (0: stage1's default);
	// NoLogPrefix: no app names before the lines of a pod of several
	// apps on rkt's stdout and stderr. Both need interface version 7.
	LogSize     int64
	NoLogPrefix bool
	// MDSRegister says whether to register the pod with the metadata
	// service; "" is MDSAuto.
	MDSRegister MDSMode
	// Warnf, if set, gets the warnings (a metadata service that does not
	// answer).
	Warnf     func(format string, args ...any)
	ExtraArgs []string
}

// defaultNet fills in the stage1's own default network when the user
// named none.
func (o *RunOptions) defaultNet(m *schema.ImageManifest) {
	if o.Net == "" {
		o.Net, _ = m.Annotations.Get(AnnoDefaultNet)
	}
}

// args builds the run entrypoint's command line for an interface version.
func (o *RunOptions) args(ep string, version int, uuid string) []string {
	a := []string{ep}
	if o.Debug {
		a = append(a, "--debug")
	}
	if o.Net != "" {
		a = append(a, "--net="+o.Net)
	}
	if o.Interactive {
		a = append(a, "--interactive")
	}
	if o.Hostname != "" && version >= 2 {
		a = append(a, "--hostname="+o.Hostname)
	}
	if version >= 3 {
		if o.DisableCaps {
			a = append(a, "--disable-capabilities-restriction")
		}
		if o.DisablePaths {
			a = append(a, "--disable-paths")
		}
		if o.DisableSeccomp {
			a = append(a, "--disable-seccomp")
		}
	}
	if o.DNSConfMode != "" && version >= 4 {
		a = append(a, "--dns-conf-mode="+o.DNSConfMode)
	}
	if o.IPC != "" && version >= 6 {
		a = append(a, "--ipc="+o.IPC)
	}
	if version >= 7 {
		if o.LogSize > 0 {
			a = append(a, "--log-size="+strconv.FormatInt(o.LogSize, 10))
		}
		if o.NoLogPrefix {
			a = append(a, "--log-prefix=false")
		}
	}
	if o.LocalConfig != "" {
		a = append(a, "--local-config="+o.LocalConfig)
	}
	a = append(a, o.ExtraArgs...)
	return append(a, uuid)
}

// Exec moves the prepared pod to run/ and replaces this process with the
// stage1 run entrypoint: from here on, rkt's PID and cgroup are the pod's.
// It returns only on failure.
func (pr *Prepared) Exec(opts RunOptions) error {
	ep, err := pr.Stage1.Entrypoint(AnnoRun)
	if err != nil {
		return err
	}
	// Registered before it moves to run/, so that a failure leaves
	// nothing behind.
	if err := registerMDS(pr.Pod, opts.MDSRegister, opts.Warnf); err != nil {
		pr.Abort()
		return err
	}
	if err := pr.Pod.ToRun(); err != nil {
		return err
	}
	opts.defaultNet(pr.Stage1.Manifest)
	return execStage1(pr.Pod, pr.TreeLocks, ep, opts.args(ep, pr.Stage1.InterfaceVersion, pr.Pod.UUID))
}

// RunPrepared locks a prepared pod, moves it to run/ and execs stage1.
// Of several racing callers exactly one wins; the others get an error.
// Options left empty in opts are those given to rkt prepare; net, when
// it has DNS or hosts entries, replaces the prepared pod's (and
// opts.DNSConfMode should say so).
func RunPrepared(ctx context.Context, s *imagestore.Store, podsDir, uuid string, opts RunOptions, net *PodSpec) error {
	p, err := pod.Get(podsDir, uuid)
	if err != nil {
		return err
	}
	if p.Phase != pod.PhasePrepared {
		return fmt.Errorf("pod %s is %s, not prepared: %w", p.UUID, p.State(), pod.ErrBadState)
	}
	if err := p.TryLock(); err != nil {
		if errors.Is(err, pod.ErrNotFound) {
			return fmt.Errorf("pod %s is not prepared any more: another rkt took it meanwhile: %w", p.UUID, pod.ErrBadState)
		}
		return err
	}
	defer p.Unlock()
	saved, err := preparedOptions(p)
	if err != nil {
		return err
	}
	if net != nil {
		hostname := opts.Hostname
		if hostname == "" {
			hostname = saved.Hostname
		}
		n := *net
		n.Hostname = hostname
		if err := writeNetFiles(p, &n); err != nil {
			return err
		}
	}
	opts.merge(saved)
	m, root, err := ReadStage1(p.Path())
	if err != nil {
		return err
	}
	ep, err := EntrypointOf(m, root, AnnoRun)
	if err != nil {
		return err
	}
	version := 1
	if v, ok := m.Annotations.Get(AnnoInterface); ok {
		version, _ = strconv.Atoi(v)
	}
	ids, err := os.ReadFile(filepath.Join(p.Path(), stage1abi.TreeIDsFile))
	if err != nil {
		return err
	}
	var locks []*lock.Lock
	defer func() {
		for _, l := range locks {
			l.Close()
		}
	}()
	for _, id := range strings.Fields(string(ids)) {
		l, err := s.UseTree(ctx, id)
		if err != nil {
			return err
		}
		locks = append(locks, l)
		if _, err := os.Stat(filepath.Join(s.TreePath(id), "rendered")); err != nil {
			return fmt.Errorf("pod %s: an image it uses was removed from the store (tree %s): prepare the pod again", p.UUID, id)
		}
	}
	// Registered while still prepared: a failure leaves the pod
	// prepared, to be run again.
	if err := registerMDS(p, opts.MDSRegister, opts.Warnf); err != nil {
		return err
	}
	if err := p.ToRun(); err != nil {
		return err
	}
	opts.defaultNet(m)
	return execStage1(p, locks, ep, opts.args(ep, version, p.UUID))
}

// execStage1 hands the pod lock and the tree locks to stage1 across exec.
func execStage1(p *pod.Pod, trees []*lock.Lock, ep string, args []string) error {
	lf := p.LockFile()
	if err := clearCloexec(lf.Fd()); err != nil {
		return err
	}
	var treeFds []string
	for _, l := range trees {
		if err := clearCloexec(l.Fd()); err != nil {
			return err
		}
		treeFds = append(treeFds, strconv.Itoa(int(l.Fd())))
	}
	env := append(os.Environ(),
		stage1abi.LockFdEnv+"="+strconv.Itoa(int(lf.Fd())),
		stage1abi.TreeLockFdsEnv+"="+strings.Join(treeFds, ","))
	if err := os.Chdir(p.Path()); err != nil {
		return err
	}
	err := syscall.Exec(ep, args, env)
	return fmt.Errorf("executing stage1 %s: %w", ep, err)
}

func clearCloexec(fd uintptr) error {
	_, err := unix.FcntlInt(fd, unix.F_SETFD, 0)
	return err
}
