// Package run is the default flavor's setup helper (rkt-setup) and
// teardown helper (rkt-netdown), modes of the big stage1 binary that the
// pod's host-side process (stage1/host) runs. The setup helper reads the
// run arguments and tells the host-side process how to start the
// supervisor; it reads the pod directory, creates the pod's cgroups with
// each app's limits, prepares the files the apps get, sends the
// supervisor its configuration (the supervisor's launchers then prepare
// the apps' roots), sets up the pod's CNI networks (any --net but host
// and none) in the supervisor's network namespace, and lets the apps
// start. On failure it stops the supervisor and undoes what it did. The
// teardown helper deletes the networks once the pod has exited.
package run

import (
	"bufio"
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
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/stage1/gc"
	"github.com/rkt/rkt/stage1/host"
	"github.com/rkt/rkt/stage1/podcfg"
	"github.com/rkt/rkt/stage1/supervisor"
	"github.com/rkt/rkt/stage2"
)

// ExitFailure is the exit code of a stage1 failure.
const ExitFailure = host.ExitFailure

// Setup runs the setup helper with args (without argv[0]): the host-side
// process's start (Unix nanoseconds) and the run arguments. Its
// descriptors are host.SetupConfigFd, SetupControlFd and SetupPidFd.
func Setup(ctx context.Context, args []string) int {
	for _, fd := range []int{host.SetupConfigFd, host.SetupControlFd, host.SetupPidFd} {
		unix.CloseOnExec(fd) // not for the CNI plugins
	}
	cfgOut := os.NewFile(host.SetupConfigFd, "supervisor-config")
	ctl := os.NewFile(host.SetupControlFd, "control")
	pidIn := os.NewFile(host.SetupPidFd, "supervisor-pid")
	defer cfgOut.Close()
	defer ctl.Close()
	defer pidIn.Close()
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "stage1: rkt-setup: want the host-side process's start and the run arguments")
		return ExitFailure
	}
	epoch, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1: rkt-setup: bad start time %q\n", args[0])
		return ExitFailure
	}
	opts, err := podcfg.ParseRunArgs(args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1: %v\n", err)
		return ExitFailure
	}
	r := &runner{opts: opts, start: time.Unix(0, epoch), logf: func(string, ...any) {}}
	if opts.Debug {
		r.logf = func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "stage1 [%6.2fms] %s\n", float64(time.Since(r.start).Microseconds())/1000, fmt.Sprintf(format, a...))
		}
	}
	// SIGTERM, SIGINT or SIGHUP (the host-side process forwards them) while
	// the pod is set up: give up, undoing what was done.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	var stopSig os.Signal
	stopped := make(chan struct{})
	go func() {
		select {
		case stopSig = <-sigs:
			r.logf("got %v while setting up the pod: giving up", stopSig)
			cancel()
		case <-ctx.Done():
		}
		close(stopped)
	}()
	err = r.setup(ctx, cfgOut, ctl, pidIn)
	cancel()
	<-stopped
	if err != nil {
		if stopSig != nil {
			err = fmt.Errorf("%w (stopped by %v before the pod started)", err, stopSig)
		}
		if !errors.Is(err, errNoSupervisor) {
			fmt.Fprintf(os.Stderr, "stage1: %v\n", err)
		}
		return ExitFailure
	}
	return 0
}

// errNoSupervisor: the host-side process could not start the supervisor
// (and says why).
var errNoSupervisor = errors.New("the supervisor did not start")

// Netdown runs the teardown helper with args (without argv[0]): the
// host-side process's start (Unix nanoseconds) and the run arguments. It deletes
// the networks of the pod whose directory is the working directory, once
// its fd 3 reaches EOF (the host-side process starts it while the pod's
// last processes end, and closes the other end when they are gone).
func Netdown(ctx context.Context, args []string) int {
	gate := os.NewFile(3, "gate")
	defer gate.Close()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "stage1: the pod exited but its networks are still set up: %v\n", err)
		return ExitFailure
	}
	if len(args) < 1 {
		return fail(errors.New("rkt-netdown: want the host-side process's start and the run arguments"))
	}
	epoch, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return fail(fmt.Errorf("rkt-netdown: bad start time %q", args[0]))
	}
	opts, err := podcfg.ParseRunArgs(args[1:], os.Stderr)
	if err != nil {
		return fail(err)
	}
	start := time.Unix(0, epoch)
	logf := func(string, ...any) {}
	if opts.Debug {
		logf = func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "stage1 [%6.2fms] netdown: %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, a...))
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return fail(err)
	}
	// What can be read before the pod's processes are gone is.
	if nis, err := networking.LoadNetInfo(dir); err != nil || len(nis) == 0 {
		io.Copy(io.Discard, gate)
		return gcTeardown(ctx, dir, opts, logf, fail)
	}
	cfg, err := podcfg.NetConfig(dir, opts.LocalConfig, logf)
	if err != nil {
		return fail(err)
	}
	logf("waiting for the pod's processes to end")
	io.Copy(io.Discard, gate)
	logf("tearing down")
	// A hung plugin must not keep rkt from exiting: gc retries.
	ctx, cancel := context.WithTimeout(ctx, teardownTimeout)
	defer cancel()
	if err := networking.Teardown(ctx, opts.UUID, dir, cfg); err != nil {
		return fail(err)
	}
	if err := podcfg.MarkNetDown(dir); err != nil {
		return fail(err)
	}
	return 0
}

// gcTeardown is the teardown as gc does it (which also copes with a
// missing or unreadable net-info.json).
func gcTeardown(ctx context.Context, dir string, opts *podcfg.Options, logf func(string, ...any), fail func(error) int) int {
	ctx, cancel := context.WithTimeout(ctx, teardownTimeout)
	defer cancel()
	if err := gc.TeardownNetworks(ctx, dir, opts.UUID, opts.LocalConfig, logf); err != nil {
		return fail(err)
	}
	return 0
}

// runner is one run of the setup helper.
type runner struct {
	opts  *podcfg.Options
	start time.Time
	// supPid is the supervisor's host PID.
	supPid int
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

func (r *runner) setup(ctx context.Context, cfgOut, ctl, pidIn *os.File) (err error) {
	if r.opts.PrivateUsers != "" {
		return errors.New("--private-users is not supported by this stage1 yet: run without it")
	}
	if r.opts.Mutable {
		return errors.New("--mutable pods are not supported by this stage1")
	}
	clone := host.CloneLine{
		NewNet: !r.opts.NetHost(), NewIPC: r.opts.IPC != "parent",
		Interactive: r.opts.Interactive, Debug: r.opts.Debug,
		UUID: r.opts.UUID, LogSize: r.opts.LogSize, LogPrefix: r.opts.LogPrefix,
	}
	if _, err := ctl.WriteString(clone.String() + "\n"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			r.cleanup()
		}
	}()
	hs, err := cgroup.Self()
	if err != nil {
		return err
	}
	hs = cgroup.ForPod(hs)
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	r.pod, err = podcfg.Load(ctx, wd, r.opts)
	if err != nil {
		return err
	}
	r.logf("pod %s loaded: %d apps", r.pod.UUID, len(r.pod.Apps))
	if err := r.readSupervisorPid(pidIn); err != nil {
		return err
	}
	// First, so that rkt stop and status find the pod's process 1 as soon
	// as it exists.
	if err := proc.Record(filepath.Join(r.pod.Dir, podcfg.PidFile), r.supPid); err != nil {
		return fmt.Errorf("record the pod's pid: %w", err)
	}
	// The networks are set up in the supervisor's network namespace from
	// now on, while the cgroups, the files and the supervisor's
	// configuration are made and the launchers prepare the apps.
	net := r.startNetwork(ctx)
	defer func() {
		if err != nil {
			net.abort(ctx)
		}
	}()
	// The launchers' mount points are made while the pod's cgroups are
	// (separate parts of the pod directory and of each app's stage2.App).
	files := make(chan error, 1)
	go func() { files <- r.writeMountDirs() }()
	if err := r.setupCgroups(hs); err != nil {
		<-files
		return err
	}
	r.logf("cgroups ready")
	if err := <-files; err != nil {
		return err
	}
	scfg, err := r.supervisorConfig()
	if err != nil {
		return err
	}
	data, err := scfg.Encode()
	if err != nil {
		return err
	}
	if _, err := cfgOut.Write(data); err != nil {
		return fmt.Errorf("send the supervisor its configuration: %w", err)
	}
	r.logf("supervisor configured")
	if err := r.writeFiles(); err != nil {
		return err
	}
	r.logf("pod files written")
	// The launchers prepare the apps' roots meanwhile; the apps start
	// once the networks are there.
	resolv, err := net.finish(ctx)
	if err != nil {
		return err
	}
	if r.netCfg != nil {
		if _, err := ctl.WriteString("netdown\n"); err != nil {
			r.teardownNetwork(ctx)
			return err
		}
	}
	line := supervisor.StartLine
	if resolv {
		line = supervisor.StartWithResolv
	}
	if _, err := cfgOut.WriteString(line + "\n"); err != nil {
		// The supervisor is gone: the host-side process tears the
		// networks down when it has exited.
		return fmt.Errorf("start the apps: %w", err)
	}
	r.undo = nil // from here on the pod exists: gc cleans up
	return nil
}

// readSupervisorPid reads the supervisor's PID from the host-side
// process; from then on a failure stops the supervisor first.
func (r *runner) readSupervisorPid(pidIn *os.File) error {
	line, _ := bufio.NewReader(pidIn).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return errNoSupervisor
	}
	r.supPid = pid
	r.undo = append(r.undo, r.stopSupervisor)
	return nil
}

// stopSupervisor SIGKILLs the supervisor, which has not started any app
// yet, and waits until it is gone (with every process of the pod), so
// that its cgroups can be removed. The supervisor is the host-side
// process's child, not ours: a pidfd tells when it has exited.
func (r *runner) stopSupervisor() {
	pid := r.supPid
	if pid <= 0 {
		return
	}
	r.supPid = 0
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return
	}
	defer unix.Close(fd)
	unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, 10_000); err != unix.EINTR {
			return
		}
	}
}

// setupCgroups creates the pod's cgroups (one per app with its limits)
// and records them for gc. Nothing migrates a whole process on the way,
// as the first such migration after a quiet moment waits for an RCU grace
// period (several ms, more on a busy host) holding the kernel's cgroup
// mutex: each launcher is started right in its app's cgroup v2 directory
// (CLONE_INTO_CGROUP) and moves just its own thread, the one that execs
// the app, into the v1 ones. stage1's own processes (the host-side one,
// the supervisor) stay in the caller's cgroups, except in a systemd unit,
// whose cgroup is the pod's: there this helper moves them, and itself, to
// a stage1 leaf first, as the unit's cgroup must hold no process once it
// delegates controllers to the apps (cgroup v2).
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
	hostPid := os.Getppid()
	p := cgroup.NewPod(hs, r.pod.UUID, inUnit)
	r.undo = append(r.undo, func() {
		// Stop the supervisor, move back to where we came from, then
		// remove what we made.
		r.stopSupervisor()
		if inUnit {
			for _, h := range hs {
				cgroup.Join(h.Dir(h.Path), hostPid)
				cgroup.Join(h.Dir(h.Path), 0)
			}
		}
		cgroup.Remove(context.Background(), p.Created())
	})
	record := func() error {
		if err := os.MkdirAll(filepath.Join(r.pod.Dir, filepath.Dir(podcfg.CgroupsFile)), 0o755); err != nil {
			return err
		}
		var b strings.Builder
		for _, d := range p.Created() {
			b.WriteString(d + "\n")
		}
		return writeFile(filepath.Join(r.pod.Dir, podcfg.CgroupsFile), b.String())
	}
	if err := p.Create(inUnit); err != nil {
		record()
		return err
	}
	if inUnit {
		for _, d := range p.Stage1Dirs() {
			for _, pid := range []int{hostPid, 0, r.supPid} {
				if err := cgroup.Join(d, pid); err != nil {
					record()
					return err
				}
			}
		}
	}
	for _, a := range r.pod.Apps {
		dirs, err := p.AddApp(a.Launch.Name, a.Limits)
		if err != nil {
			record()
			return err
		}
		// Only the pod's /dev devices may be opened or created (the
		// devices cgroup on v1, a device program on v2).
		if err := p.LimitDevices(a.Launch.Name, cgroup.DefaultDevices); err != nil {
			record()
			return err
		}
		for i, h := range hs {
			if h.Unified || h.Has(cgroup.Memory) {
				a.OOMEvents = append(a.OOMEvents, exitstatus.OOMEventFile(dirs[i], h.Unified))
			}
			if h.Unified {
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

// writeMountDirs creates what the launchers mount on as soon as they get
// the supervisor's configuration: each app's root and overlay layers, and
// the empty volumes' backing directories.
func (r *runner) writeMountDirs() error {
	dir := r.pod.Dir
	var dirs []string
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
	return nil
}

// writeFiles creates the rest of the pod directory that stage1 owns,
// which is needed only once the apps start (written while the launchers
// prepare them): state directories, the generated /etc/hosts, each app's
// environment file and enter configuration.
func (r *runner) writeFiles() error {
	dir := r.pod.Dir
	for _, d := range []string{podcfg.StatusDir, podcfg.AppPidDir, podcfg.EnvDir, podcfg.EnterDir, filepath.Dir(podcfg.HostsFile)} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create %s in the pod directory: %w", d, err)
		}
	}
	if err := writeFile(filepath.Join(dir, podcfg.HostsFile), podcfg.HostsContent(r.pod.Hostname)); err != nil {
		return err
	}
	for _, a := range r.pod.Apps {
		env := strings.Join(a.Launch.Env, "\x00") + "\x00"
		// Root-only: the environment may hold secrets (AC_METADATA_URL's
		// token, --set-env values).
		if err := writePrivate(filepath.Join(dir, podcfg.AppEnv(a.Launch.Name)), env); err != nil {
			return err
		}
		ec, err := json.Marshal(a.Launch.EnterConfig())
		if err != nil {
			return fmt.Errorf("app %s: enter configuration: %w", a.Launch.Name, err)
		}
		if err := writePrivate(filepath.Join(dir, podcfg.AppEnter(a.Launch.Name)), string(ec)); err != nil {
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

func writePrivate(p, content string) error {
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func writeFile(p, content string) error {
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// handler is the launcher configuration of app l's event handler name
// running exec (nil without exec): the app's own, so that the handler
// runs in the app's root with its environment, user, working directory
// and isolation, but without the app's pid file (the handler is not the
// app rkt enter joins), its terminal (that stays the app's) or its
// readiness socket (it gets the app's environment before stage1 adds
// NOTIFY_SOCKET).
func handler(l stage2.App, name string, exec []string) *supervisor.Handler {
	if exec == nil {
		return nil
	}
	l.Exec, l.Handler = exec, name
	l.AppPidFile, l.Terminal = "", false
	launch, err := json.Marshal(&l)
	if err != nil {
		launch = nil // the launcher reports the empty configuration
	}
	// %q: quoted arguments, no newline (the configuration is lines).
	return &supervisor.Handler{Launch: launch, Exec: fmt.Sprintf("%q", exec)}
}

// supervisorConfig is the configuration sent to the supervisor.
func (r *runner) supervisorConfig() (*supervisor.Config, error) {
	cfg := &supervisor.Config{
		UUID: r.pod.UUID, PodDir: r.pod.Dir, Hostname: r.pod.Hostname,
		Loopback: !r.opts.NetHost(), Debug: r.opts.Debug,
		Epoch:          r.start.UnixNano(),
		GracePeriod:    r.pod.GracePeriod,
		HandlerTimeout: r.pod.HandlerTimeout,
		ReadyLink:      filepath.Join(r.pod.Dir, podcfg.SupervisorStatus),
	}
	// systemd's environment is the host-side process's (our parent's,
	// rkt run's pid).
	env := os.Environ()
	listenFds, err := fds.ListenEnv(env, os.Getppid())
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	listeners := 0
	if listenFds > 0 {
		cfg.ListenFds = listenFds
	}
	watchdog := watchdogUsec(env, os.Getppid())
	for _, a := range r.pod.Apps {
		l := a.Launch
		if r.opts.Debug {
			l.DebugEpoch = r.start.UnixNano()
		}
		if r.opts.NetContained() && r.opts.ResolvMode == "default" {
			l.NetResolvConf = filepath.Join(r.pod.Dir, podcfg.ResolvConfGenerated)
		}
		unified := l.UnifiedCgroup
		l.UnifiedCgroup = "" // the supervisor starts the launcher in it
		preStart, postStop := handler(l, "pre-start", a.PreStart), handler(l, "post-stop", a.PostStop)
		// systemd's protocols are the app's, not its event handlers'.
		if a.SupportsNotify {
			l.Env = append(append([]string(nil), l.Env...), "NOTIFY_SOCKET="+supervisor.NotifySocket(r.pod.UUID, l.Name))
			l.WatchdogUsec = watchdog
		}
		// Socket activation: the app of a one-app pod, unless it says
		// no; in a larger pod, the apps that say yes.
		listen := listenFds > 0 && (a.SocketActivated == "true" || (len(r.pod.Apps) == 1 && a.SocketActivated == ""))
		if listen {
			listeners++
			l.ListenFdNames = getenv(env, "LISTEN_FDNAMES")
			r.logf("app %s gets the %d sockets of socket activation", l.Name, listenFds)
		}
		launch, err := json.Marshal(&l)
		if err != nil {
			launch = nil // the launcher reports the empty configuration
		}
		cfg.Apps = append(cfg.Apps, supervisor.App{
			Name: l.Name, Launch: launch, NewSession: l.NewSession,
			UnifiedCgroup: unified, SupportsNotify: a.SupportsNotify, Listen: listen,
			StatusFile:  filepath.Join(r.pod.Dir, podcfg.AppStatus(l.Name)),
			StartedFile: filepath.Join(r.pod.Dir, podcfg.AppStarted(l.Name)),
			OOMEvents:   a.OOMEvents,
			PreStart:    preStart, PostStop: postStop,
		})
	}
	if listenFds > 0 && listeners == 0 {
		fmt.Fprintf(os.Stderr, "stage1: warning: no app of the pod gets the sockets of socket activation (LISTEN_FDS=%d): give the app that serves them --socket-activated\n", listenFds)
	}
	return cfg, nil
}

// watchdogUsec is systemd's watchdog interval (WATCHDOG_USEC) when it is
// meant for process pid (WATCHDOG_PID names it, or is absent), else "".
func watchdogUsec(env []string, pid int) string {
	usec := getenv(env, "WATCHDOG_USEC")
	if n, err := strconv.ParseUint(usec, 10, 64); err != nil || n == 0 {
		return ""
	}
	if p := getenv(env, "WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return ""
	}
	return usec
}

// getenv is the last value of k in env, or "".
func getenv(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}
