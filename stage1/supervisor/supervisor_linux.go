package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage2"
)

// appState is the supervisor's view of one app.
type appState struct {
	cfg     *App
	pid     int
	started bool // exec'd (its status pipe closed without a message)
	exited  bool
	ready   bool // sent READY=1 (apps that support notify)
}

// startEvent is the outcome of one launcher, from its status pipe.
type startEvent struct {
	app string
	msg string // "" when the app was exec'd
}

// supervisor holds the pod's state; only the main loop touches it.
type supervisor struct {
	cfg   *Config
	apps  map[string]*appState
	order []*appState
	byPid map[int]*appState
	live  int
	// pending counts launchers whose status pipe has not been read to
	// the end: their error message must be printed before exiting.
	pending   int
	stopping  bool
	firstFail int
	failed    bool
	isReady   bool
	grace     *time.Timer
	events    *os.File
	logf      func(format string, args ...any)
}

// Main runs the supervisor: it reads its Config from ConfigFd and returns
// the pod's exit code (the first failing app's, else 0).
func Main(ctx context.Context) int {
	// Nothing in the pod may open our executable (CVE-2019-5736): a
	// non-dumpable process's /proc/PID/exe is out of reach without
	// CAP_SYS_PTRACE; and while we run, the kernel refuses to open our
	// executable for writing (ETXTBSY).
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// Run from /proc/self/fd/N, the kernel named us "N".
	setName(ArgvName)
	cfgFile := os.NewFile(ConfigFd, "config")
	var cfg Config
	err := json.NewDecoder(cfgFile).Decode(&cfg)
	cfgFile.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 supervisor: read the pod configuration: %v\n", err)
		return 254
	}
	s := &supervisor{
		cfg: &cfg, apps: map[string]*appState{}, byPid: map[int]*appState{},
		events: os.NewFile(EventFd, "events"),
		logf:   func(string, ...any) {},
	}
	unix.CloseOnExec(EventFd)
	unix.CloseOnExec(ExeFd) // launchers re-exec /proc/self/exe, which is this copy
	if cfg.Debug {
		s.logf = func(format string, args ...any) {
			ms := float64(time.Now().UnixNano()-cfg.Epoch) / 1e6
			fmt.Fprintf(os.Stderr, "stage1 [%6.2fms] supervisor: %s\n", ms, fmt.Sprintf(format, args...))
		}
	}
	code, err := s.run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 supervisor: %v\n", err)
		return 254
	}
	return code
}

// setupPod prepares the pod-wide namespaces: private mount propagation
// (nothing the apps mount reaches the host), the hostname, lo.
func (s *supervisor) setupPod() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the pod's mounts private: %w", err)
	}
	if err := unix.Sethostname([]byte(s.cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname %q: %w", s.cfg.Hostname, err)
	}
	if s.cfg.NetNone {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings lo up in the pod's own network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: read flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

func (s *supervisor) run(ctx context.Context) (int, error) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if s.cfg.Interactive {
		// The app has the terminal and gets ^C from it directly.
		signal.Ignore(unix.SIGINT)
	}
	s.logf("running")
	go func() {
		for _, d := range s.cfg.Cgroups {
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte("0"), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "stage1: supervisor: join cgroup %s: %v\n", d, err)
			}
		}
	}()
	if err := s.setupPod(); err != nil {
		return 0, err
	}
	starts := make(chan startEvent, len(s.cfg.Apps))
	notes := make(chan string, 16)
	for i := range s.cfg.Apps {
		a := &s.cfg.Apps[i]
		st := &appState{cfg: a}
		s.apps[a.Launch.Name] = st
		s.order = append(s.order, st)
		if a.SupportsNotify {
			sock, err := listenNotify(s.cfg.UUID, a.Launch.Name, notes)
			if err != nil {
				return 0, err
			}
			a.Launch.Env = append(a.Launch.Env, "NOTIFY_SOCKET="+sock)
		}
	}
	for _, st := range s.order {
		if err := s.start(st, starts); err != nil {
			// The launcher never ran: count the app as failed to start.
			fmt.Fprintf(os.Stderr, "stage1: app %s: %v\n", st.cfg.Launch.Name, err)
			st.exited = true
			s.recordExit(st, 254)
		}
	}
	for s.live > 0 || s.pending > 0 {
		var graceC <-chan time.Time
		if s.grace != nil {
			graceC = s.grace.C
		}
		select {
		case sig := <-sigs:
			switch sig {
			case unix.SIGCHLD:
				s.reap()
			case unix.SIGTERM, unix.SIGINT, unix.SIGHUP:
				s.logf("got %v: stopping the pod", sig)
				s.stop(sig.(syscall.Signal))
			}
		case ev := <-starts:
			s.started(ev)
		case app := <-notes:
			if st := s.apps[app]; st != nil && !st.ready {
				s.logf("app %s is ready", app)
				st.ready = true
				s.checkReady()
			}
		case <-ctx.Done():
			s.logf("cancelled: killing the pod")
			unix.Kill(-1, unix.SIGKILL)
			return 0, ctx.Err()
		case <-graceC:
			s.logf("grace period over: killing what is left")
			unix.Kill(-1, unix.SIGKILL)
			s.grace = nil
		}
	}
	if s.failed {
		return s.firstFail, nil
	}
	return 0, nil
}

// start runs the launcher of one app.
func (s *supervisor) start(st *appState, starts chan<- startEvent) error {
	a := &st.cfg.Launch
	if s.cfg.Debug {
		a.DebugEpoch = s.cfg.Epoch
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		cfgW.Close()
		return err
	}
	stdin := os.Stdin
	if !s.cfg.Interactive {
		if stdin, err = os.Open(os.DevNull); err != nil {
			return err
		}
		defer stdin.Close()
	}
	attr := &syscall.ProcAttr{
		Dir:   s.cfg.PodDir,
		Env:   []string{},
		Files: []uintptr{stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd(), cfgR.Fd(), statusW.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWNS,
			Setsid:     a.NewSession,
		},
	}
	pid, err := forkInto(a, attr)
	cfgR.Close()
	statusW.Close()
	if err != nil {
		cfgW.Close()
		statusR.Close()
		return fmt.Errorf("start the stage2 launcher: %w", err)
	}
	st.pid = pid
	s.byPid[pid] = st
	s.live++
	s.pending++
	s.logf("app %s: launcher pid %d", a.Name, pid)
	go func() {
		msg, _ := io.ReadAll(statusR)
		statusR.Close()
		starts <- startEvent{app: a.Name, msg: strings.TrimSpace(string(msg))}
	}()
	defer cfgW.Close()
	data, err := json.Marshal(a) // after forkInto, which may add a cgroup
	if err == nil {
		// The launcher reads while we write: a large one cannot block us
		// for long.
		_, err = cfgW.Write(data)
	}
	if err != nil {
		// The launcher fails on the truncated configuration and reports.
		s.logf("app %s: send configuration: %v", a.Name, err)
	}
	return nil
}

// forkInto starts a's launcher, right in a.UnifiedCgroup when it can;
// otherwise the launcher joins that cgroup itself.
func forkInto(a *stage2.App, attr *syscall.ProcAttr) (int, error) {
	argv := []string{LauncherArgvName, a.Name}
	if a.UnifiedCgroup != "" {
		fd, err := unix.Open(a.UnifiedCgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
			pid, err := syscall.ForkExec("/proc/self/exe", argv, attr)
			unix.Close(fd)
			attr.Sys.UseCgroupFD = false
			if err == nil {
				return pid, nil
			}
		}
		a.CgroupDirs = append(a.CgroupDirs, a.UnifiedCgroup)
	}
	return syscall.ForkExec("/proc/self/exe", argv, attr)
}

// started handles a launcher's outcome.
func (s *supervisor) started(ev startEvent) {
	s.pending--
	st := s.apps[ev.app]
	if ev.msg != "" {
		// "<code> <message>"
		_, msg, _ := strings.Cut(ev.msg, " ")
		fmt.Fprintf(os.Stderr, "rkt: app %s: %s\n", ev.app, msg)
		return
	}
	st.started = true
	if f, err := os.Create(st.cfg.StartedFile); err == nil {
		f.Close()
	}
	s.logf("app %s started", ev.app)
	s.checkReady()
}

// checkReady reports readiness once every app was started and every app
// that supports notify said READY=1.
func (s *supervisor) checkReady() {
	if s.isReady {
		return
	}
	for _, st := range s.order {
		if !st.started || (st.cfg.SupportsNotify && !st.ready) {
			return
		}
	}
	s.isReady = true
	if link := s.cfg.ReadyLink; link != "" {
		os.Remove(link)
		if err := os.Symlink("ready", link); err != nil {
			fmt.Fprintf(os.Stderr, "stage1: mark the pod ready: %v\n", err)
		}
	}
	s.events.WriteString("ready\n")
	s.logf("pod ready")
}

// reap collects every exited child; apps get their status recorded.
func (s *supervisor) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		st := s.byPid[pid]
		if st == nil {
			continue // an orphan re-parented to us
		}
		delete(s.byPid, pid)
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		st.exited = true
		s.live--
		s.logf("app %s (pid %d) exited with %d", st.cfg.Launch.Name, pid, code)
		s.recordExit(st, code)
	}
}

// recordExit writes the app's status and applies the exit policy.
func (s *supervisor) recordExit(st *appState, code int) {
	if err := os.WriteFile(st.cfg.StatusFile, []byte(strconv.Itoa(code)), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "stage1: app %s: record exit status: %v\n", st.cfg.Launch.Name, err)
	}
	if code != 0 && !s.failed {
		s.failed, s.firstFail = true, code
		if s.live > 0 {
			s.logf("app %s failed: stopping the pod", st.cfg.Launch.Name)
			s.stop(unix.SIGTERM)
		}
	}
}

// stop forwards sig to every running app and arms the grace period.
func (s *supervisor) stop(sig syscall.Signal) {
	for _, st := range s.order {
		if st.pid > 0 && !st.exited {
			unix.Kill(st.pid, sig)
		}
	}
	if !s.stopping {
		s.stopping = true
		s.grace = time.NewTimer(s.cfg.GracePeriod)
	}
}

// listenNotify opens the app's notification socket (abstract, in the
// pod's network namespace) and reports READY=1 sent from inside the pod.
func listenNotify(uuid, app string, notes chan<- string) (string, error) {
	name := "@rkt-" + uuid + "-" + app + "-notify"
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("app %s: notify socket: %w", app, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("app %s: bind notify socket %s: %w", app, name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("app %s: notify socket credentials: %w", app, err)
	}
	go func() {
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		for {
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			if !fromPod(oob[:oobn]) {
				continue
			}
			sc := bufio.NewScanner(strings.NewReader(string(buf[:n])))
			for sc.Scan() {
				if sc.Text() == "READY=1" {
					notes <- app
				}
			}
		}
	}()
	return name, nil
}

// fromPod reports whether a message's sender is in the pod's PID
// namespace (the kernel gives pid 0 for senders outside it).
func fromPod(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			return cred.Pid > 0
		}
	}
	return false
}

// setName sets the process's name (/proc/PID/comm, what ps shows).
func setName(name string) {
	os.WriteFile("/proc/self/comm", []byte(name), 0o644)
}
