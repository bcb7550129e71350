// Package run is the default flavor's run entrypoint (/init): the host
// side of a pod. Running with the PID and cgroup of `rkt run` (stage0
// exec'd it), it reads the pod directory, creates the pod's cgroups with
// each app's limits, prepares the files the apps get, starts the
// supervisor as process 1 of new PID, mount, UTS and IPC (and, unless
// --net=host, network) namespaces from the
// stage1 binary, sets up the pod's CNI networks in that network namespace
// (any --net but host), forwards signals to the supervisor, tells systemd
// when the pod is ready, tears the networks down when the pod has exited,
// and exits with the pod's exit code.
package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/stage1/podcfg"
	"github.com/rkt/rkt/stage1/supervisor"
)

// ExitFailure is the exit code of a stage1 failure.
const ExitFailure = 254

// Main runs the entrypoint with args (without argv[0]) and returns the
// exit code: the pod's, or ExitFailure.
func Main(ctx context.Context, args []string) int {
	opts, err := podcfg.ParseRunArgs(args, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1: %v\n", err)
		return ExitFailure
	}
	r := &runner{opts: opts, start: time.Now(), logf: func(string, ...any) {}}
	if opts.Debug {
		r.logf = func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "stage1 [%6.2fms] %s\n", float64(time.Since(r.start).Microseconds())/1000, fmt.Sprintf(format, a...))
		}
	}
	code, err := r.run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1: %v\n", err)
		return ExitFailure
	}
	return code
}

// runner is one run of the entrypoint.
type runner struct {
	opts  *podcfg.Options
	start time.Time
	// The supervisor's cgroups: v1 directories it joins itself, and the
	// v2 directory it is started in.
	stage1Cgroups []string
	stage1Unified string
	// inUnit: rkt runs as a systemd service; the unit's cgroup is the pod's.
	inUnit bool
	pod    *podcfg.Pod
	logf   func(format string, args ...any)
	// netCfg is set once the pod's CNI networks are set up.
	netCfg *networking.Config
	// undo is run in reverse order when starting the pod fails.
	undo []func()
}

func (r *runner) cleanup() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.undo = nil
}

func (r *runner) run(ctx context.Context) (code int, err error) {
	if r.opts.PrivateUsers != "" {
		return 0, errors.New("--private-users is not supported by this stage1 yet: run without it")
	}
	if r.opts.Mutable {
		return 0, errors.New("--mutable pods are not supported by this stage1")
	}
	keepLocks()
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	r.pod, err = podcfg.Load(ctx, wd, r.opts)
	if err != nil {
		return 0, err
	}
	r.logf("pod %s loaded: %d apps", r.pod.UUID, len(r.pod.Apps))
	defer func() {
		if err != nil {
			r.cleanup()
		}
	}()
	hs, err := cgroup.Self()
	if err != nil {
		return 0, err
	}
	exe := make(chan exeResult, 1)
	go func() {
		f, err := stage1Exe()
		exe <- exeResult{f, err}
	}()
	if err := r.writeFiles(); err != nil {
		return 0, err
	}
	r.logf("pod files written")
	if err := r.setupCgroups(hs); err != nil {
		return 0, err
	}
	// The first cgroup v1 migration waits for an RCU grace period while
	// holding the kernel's cgroup mutex. Start one now, after our mkdirs,
	// so that the wait overlaps with starting the supervisor and the
	// launchers, whose own migrations then find the lock warm. (In a
	// systemd unit this process already moved, synchronously.)
	if !r.inUnit {
		go cgroup.Warm(hs)
	}
	r.logf("cgroups ready")
	res := <-exe
	if res.err != nil {
		return 0, res.err
	}
	defer res.f.Close()
	r.logf("stage1 binary opened")
	code, err = r.supervise(ctx, res.f)
	if terr := r.teardownNetwork(ctx); terr != nil {
		warnf("the pod exited but its networks are still set up: %v", terr)
	} else if r.netCfg != nil {
		r.logf("networks torn down")
	}
	return code, err
}

type exeResult struct {
	f   *os.File
	err error
}

// keepLocks makes the pod and tree locks stage0 handed over close on
// exec: this process keeps them for the pod's lifetime (it outlives the
// pod's processes), and nothing in the pod should hold them.
func keepLocks() {
	fds := []string{os.Getenv("RKT_LOCK_FD")}
	fds = append(fds, strings.Split(os.Getenv("RKT_TREE_LOCK_FDS"), ",")...)
	for _, s := range fds {
		if fd, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// setupCgroups creates the pod's cgroups (a stage1 leaf for the
// supervisor, one cgroup per app with its limits) and records them for
// gc. Processes are put in them without migrations where the kernel
// allows (clone into a cgroup v2 directory); cgroup v1 migrations are done
// by each process itself in the background.
func (r *runner) setupCgroups(hs []cgroup.Hierarchy) error {
	if len(hs) == 0 {
		for _, a := range r.pod.Apps {
			if l := a.Limits; l.CPUMilli > 0 || l.MemoryBytes > 0 || l.CPUShares > 0 || (l.PidsMax > 0 && !l.PidsMaxIsDefault) {
				return fmt.Errorf("app %s has resource limits but no cgroup file system is mounted", a.Launch.Name)
			}
		}
		return nil
	}
	inUnit := cgroup.UnderSystemdUnit(hs)
	r.inUnit = inUnit
	// Starting a process right in its cgroup (CLONE_INTO_CGROUP) takes the
	// kernel's cgroup mutex, which a cgroup v1 migration holds through an
	// RCU grace period: with v1 hierarchies around, every process joins
	// its cgroups itself, in the background.
	cloneInto := true
	for _, h := range hs {
		if !h.Unified {
			cloneInto = false
		}
	}
	p := cgroup.NewPod(hs, r.pod.UUID, inUnit)
	r.undo = append(r.undo, func() {
		// Move back to where we came from, then remove what we made.
		if inUnit {
			for _, h := range hs {
				cgroup.Join(h.Dir(h.Path), 0)
			}
		}
		cgroup.Remove(context.Background(), p.Created())
	})
	record := func() error {
		var b strings.Builder
		for _, d := range p.Created() {
			b.WriteString(d + "\n")
		}
		return writeFile(filepath.Join(r.pod.Dir, podcfg.CgroupsFile), b.String())
	}
	if err := p.Create(); err != nil {
		record()
		return err
	}
	for i, d := range p.Stage1Dirs() {
		switch {
		case inUnit:
			// The unit's cgroup is the pod's: it must hold no process
			// once it delegates controllers to the apps (cgroup v2).
			if err := cgroup.Join(d, 0); err != nil {
				record()
				return err
			}
		case hs[i].Unified && cloneInto:
			r.stage1Unified = d
		default:
			r.stage1Cgroups = append(r.stage1Cgroups, d)
		}
	}
	for _, a := range r.pod.Apps {
		dirs, err := p.AddApp(a.Launch.Name, a.Limits)
		if err != nil {
			record()
			return err
		}
		for i, h := range hs {
			if h.Unified && cloneInto {
				a.Launch.UnifiedCgroup = dirs[i]
			} else {
				a.Launch.CgroupDirs = append(a.Launch.CgroupDirs, dirs[i])
			}
			target := "/sys/fs/cgroup"
			if len(hs) > 1 {
				target = path.Join(target, filepath.Base(h.Mount))
			}
			a.Launch.CgroupMounts = append(a.Launch.CgroupMounts, stage2Mount(dirs[i], target))
		}
	}
	if err := record(); err != nil {
		return err
	}
	return writeFile(filepath.Join(r.pod.Dir, podcfg.SubcgroupFile), p.Subcgroup())
}

// writeFiles creates the directories and files of the pod directory that
// stage1 owns: state directories, app roots and overlay layers, empty
// volumes, the generated /etc/hosts, each app's environment file.
func (r *runner) writeFiles() error {
	dir := r.pod.Dir
	dirs := []string{podcfg.StatusDir, podcfg.AppPidDir, podcfg.EnvDir, filepath.Dir(podcfg.HostsFile)}
	for _, a := range r.pod.Apps {
		n := a.Launch.Name
		dirs = append(dirs, podcfg.AppRoot(n), podcfg.AppUpper(n), podcfg.AppWork(n))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create %s in the pod directory: %w", d, err)
		}
	}
	empties := append([]podcfg.EmptyVolume(nil), r.pod.EmptyVolumes...)
	for _, a := range r.pod.Apps {
		empties = append(empties, a.InlineVolumes...)
	}
	for _, ev := range empties {
		if err := makeEmptyVolume(ev); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(dir, podcfg.HostsFile), podcfg.HostsContent(r.pod.Hostname)); err != nil {
		return err
	}
	for _, a := range r.pod.Apps {
		env := strings.Join(a.Launch.Env, "\x00") + "\x00"
		if err := writeFile(filepath.Join(dir, podcfg.AppEnv(a.Launch.Name)), env); err != nil {
			return err
		}
	}
	return nil
}

// makeEmptyVolume creates an empty volume's backing directory.
func makeEmptyVolume(ev podcfg.EmptyVolume) error {
	if err := os.MkdirAll(filepath.Dir(ev.Path), 0o755); err != nil {
		return fmt.Errorf("volume %s: %w", ev.Name, err)
	}
	if err := os.Mkdir(ev.Path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("volume %s: %w", ev.Name, err)
	}
	if err := os.Lchown(ev.Path, ev.UID, ev.GID); err != nil {
		return fmt.Errorf("volume %s: set owner %d:%d: %w", ev.Name, ev.UID, ev.GID, err)
	}
	if err := os.Chmod(ev.Path, ev.Mode); err != nil {
		return fmt.Errorf("volume %s: set mode %v: %w", ev.Name, ev.Mode, err)
	}
	return nil
}

func writeFile(p, content string) error {
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// supervise starts the supervisor from exe, feeds it its configuration,
// forwards signals and readiness, and returns the pod's exit code.
//
// Messages (see the protocol drawing in stage1/default):
//
//	run --Config (JSON, fd 3)--> supervisor
//	run <--"ready\n" (fd 4)----- supervisor
func (r *runner) supervise(ctx context.Context, exe *os.File) (int, error) {
	cgroups := r.stage1Cgroups
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer cfgW.Close()
	evR, evW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return 0, err
	}
	defer evR.Close()
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS)
	if r.opts.IPC != "parent" {
		flags |= unix.CLONE_NEWIPC
	}
	if !r.opts.NetHost() {
		flags |= unix.CLONE_NEWNET
	}
	const exeFd = supervisor.ExeFd
	attr := &syscall.ProcAttr{
		Dir:   r.pod.Dir,
		Env:   []string{},
		Files: []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd(), cfgR.Fd(), evW.Fd(), exe.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: flags,
			Setsid:     !r.opts.Interactive,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	// Signals are caught before the supervisor exists, so none is lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if r.opts.Interactive {
		signal.Ignore(unix.SIGINT) // the app gets ^C from the terminal
	}
	argv0 := fmt.Sprintf("/proc/self/fd/%d", exeFd)
	pid, err := -1, error(nil)
	if r.stage1Unified != "" {
		if fd, oerr := unix.Open(r.stage1Unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); oerr == nil {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
			pid, err = syscall.ForkExec(argv0, []string{supervisor.ArgvName}, attr)
			unix.Close(fd)
			attr.Sys.UseCgroupFD = false
		}
		if pid <= 0 {
			r.logf("cannot start the supervisor in %s (%v): it joins it itself", r.stage1Unified, err)
			cgroups = append(cgroups, r.stage1Unified)
		}
	}
	if pid <= 0 {
		pid, err = syscall.ForkExec(argv0, []string{supervisor.ArgvName}, attr)
	}
	cfgR.Close()
	evW.Close()
	if err != nil {
		return 0, fmt.Errorf("start the pod supervisor: %w", err)
	}
	r.logf("supervisor started, pid %d", pid)
	if err := writeFile(filepath.Join(r.pod.Dir, podcfg.PidFile), strconv.Itoa(pid)); err != nil {
		killSupervisor(pid)
		return 0, err
	}
	// The supervisor waits for its configuration: its network namespace
	// gets its networks meanwhile, before any app can start.
	early, err := r.setupNetworkOrStop(ctx, pid, sigs)
	if err != nil {
		killSupervisor(pid)
		return 0, err
	}
	r.undo = nil // from here on the pod exists: gc cleans up
	data, err := json.Marshal(r.supervisorConfig(cgroups))
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return 0, err
	}
	if _, err := cfgW.Write(data); err != nil {
		r.logf("send the supervisor its configuration: %v", err)
	}
	cfgW.Close()
	if early != nil {
		r.logf("forwarding %v, which came during the network setup, to the pod", early)
		unix.Kill(pid, early.(syscall.Signal))
	}
	go r.forwardReady(evR)
	exited := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			break
		}
		exited <- ws
	}()
	for {
		select {
		case sig := <-sigs:
			r.logf("got %v: forwarding it to the pod", sig)
			unix.Kill(pid, sig.(syscall.Signal))
		case ws := <-exited:
			if ws.Signaled() {
				r.logf("supervisor killed by %v", ws.Signal())
				return 128 + int(ws.Signal()), nil
			}
			r.logf("pod exited with %d", ws.ExitStatus())
			return ws.ExitStatus(), nil
		case <-ctx.Done():
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// supervisorConfig is the configuration sent to the supervisor; cgroups
// are the v1 (or unjoined v2) cgroups it joins itself.
func (r *runner) supervisorConfig(cgroups []string) *supervisor.Config {
	cfg := &supervisor.Config{
		UUID: r.pod.UUID, PodDir: r.pod.Dir, Hostname: r.pod.Hostname,
		NetNone: r.opts.NetNone(), Interactive: r.opts.Interactive, Debug: r.opts.Debug,
		Epoch:       r.start.UnixNano(),
		GracePeriod: r.pod.GracePeriod,
		ReadyLink:   filepath.Join(r.pod.Dir, podcfg.SupervisorStatus),
		Cgroups:     cgroups,
	}
	for _, a := range r.pod.Apps {
		cfg.Apps = append(cfg.Apps, supervisor.App{
			Launch: a.Launch, SupportsNotify: a.SupportsNotify,
			StatusFile:  filepath.Join(r.pod.Dir, podcfg.AppStatus(a.Launch.Name)),
			StartedFile: filepath.Join(r.pod.Dir, podcfg.AppStarted(a.Launch.Name)),
		})
	}
	return cfg
}

// forwardReady tells systemd (NOTIFY_SOCKET) that the pod is ready when
// the supervisor says so. This process is the unit's main PID, so the
// notification is accepted with NotifyAccess=main.
func (r *runner) forwardReady(ev io.Reader) {
	buf := make([]byte, 64)
	n, _ := ev.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "ready") {
		return
	}
	r.logf("pod ready")
	if err := sdNotify("READY=1"); err != nil {
		fmt.Fprintf(os.Stderr, "stage1: tell systemd the pod is ready: %v\n", err)
	}
}

// sdNotify sends state to $NOTIFY_SOCKET, if set.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, []byte(state), 0, &unix.SockaddrUnix{Name: addr})
}
