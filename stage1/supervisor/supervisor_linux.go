package supervisor

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// phase is what an app's current launcher runs: the app, or one of its
// event handlers. An app with a pre-start handler starts in phasePreStart
// and moves to phaseApp once the handler succeeded; an app with a
// post-stop handler moves to phasePostStop once it exited.
type phase int

const (
	phaseApp phase = iota
	phasePreStart
	phasePostStop
)

// handlerName is the appc name of the event handler a phase runs.
func (p phase) handlerName() string {
	if p == phasePreStart {
		return "pre-start"
	}
	return "post-stop"
}

// appState is the supervisor's view of one app.
type appState struct {
	cfg *App
	// pid is the current launcher's (phase says what it runs).
	pid     int
	phase   phase
	started bool // exec'd (its status pipe closed without a message)
	// launched: the app's launcher's status pipe was read to its end
	// (whether it was exec'd is known).
	launched bool
	exited   bool // the app (not a handler) has exited
	ready    bool // sent READY=1 (apps that support notify)
	// launch is the launcher's configuration pipe, open until the start
	// line is passed on (or the pod is not to start).
	launch *os.File
	// stdout, stderr: the write ends of the app's output pipes to the
	// host-side process, given to each of its launchers (its event
	// handlers' too) and kept until the supervisor exits (nil: the
	// supervisor's own stdout and stderr).
	stdout, stderr *os.File
	// timer is the running handler's timeout; timedOut says it fired.
	timer    *time.Timer
	timedOut bool
	// postStopped: the post-stop handler was started (or skipped).
	postStopped bool
}

// startEvent is the outcome of one launcher, from its status pipe.
type startEvent struct {
	app   string
	phase phase
	msg   string // "" when the app (or handler) was exec'd
}

// handlerTimeout is an event handler's timer firing for launcher pid.
type handlerTimeout struct {
	st  *appState
	pid int
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
	pending int
	// gated: the configuration stream ended; start is its start line
	// ("" if it ended without one: the pod must not start).
	gated     bool
	start     string
	stopping  bool
	firstFail int
	failed    bool
	isReady   bool
	grace     *time.Timer
	events    *os.File
	logf      func(msg string)
	// launcher is the stage2 launcher binary; interactive: the (single)
	// app gets a terminal (both from the command line: known before the
	// configuration), whose master its launcher sends the host-side
	// process over term (TerminalFd), which the supervisor passes on and
	// closes.
	launcher    string
	interactive bool
	term        *os.File
	// logs is the socket the apps' output pipes go to the host-side
	// process on (LogFd), nil if there is none.
	logs *os.File
	sigs chan os.Signal
	// oomApps are the apps the kernel killed for want of memory, named
	// in the pod's last words.
	oomApps []string
	// starts gets each launcher's outcome; timeouts the event handlers'
	// timers.
	starts   chan startEvent
	timeouts chan handlerTimeout
	// stopSig is the first signal the pod was stopped with; killed: the
	// grace period ran out (no post-stop handler starts after that).
	stopSig syscall.Signal
	killed  bool
	// handlerFailed: an app's post-stop handler failed, which makes the
	// pod's exit code 254 if no app failed.
	handlerFailed bool
}

// launcherProc is a started launcher and its pipes.
type launcherProc struct {
	pid    int
	cfg    *os.File // its configuration (write end)
	status *os.File // its status (read end)
}

// Main runs the supervisor, started as `rkt-supervisor LAUNCHER
// [interactive]` (args without argv[0]): it reads its Config from
// ConfigFd and returns the pod's exit code (the first failing app's,
// else 0).
func Main(ctx context.Context, args []string) int {
	// Nothing in the pod may open our executable (CVE-2019-5736): a
	// non-dumpable process's /proc/PID/exe is out of reach without
	// CAP_SYS_PTRACE; and while we run, the kernel refuses to open our
	// executable for writing (ETXTBSY). This comes first, before anything
	// that can fail (TestMainIsNotDumpable relies on it).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		warn("stage1 supervisor: make the supervisor non-dumpable (prctl PR_SET_DUMPABLE): " + err.Error())
		return 254
	}
	setName(ArgvName)
	if len(args) < 1 {
		warn("stage1 supervisor: want the launcher's path as argument")
		return 254
	}
	s := &supervisor{
		apps: map[string]*appState{}, byPid: map[int]*appState{},
		events:   os.NewFile(EventFd, "events"),
		logf:     func(string) {},
		launcher: args[0], interactive: len(args) > 1 && args[1] == "interactive",
		sigs: make(chan os.Signal, 16),
	}
	unix.CloseOnExec(EventFd)
	if s.interactive {
		unix.CloseOnExec(TerminalFd)
		s.term = os.NewFile(TerminalFd, "terminal")
	}
	if _, err := unix.FcntlInt(LogFd, unix.F_GETFD, 0); err == nil {
		unix.CloseOnExec(LogFd)
		s.logs = os.NewFile(LogFd, "logs")
	}
	signal.Notify(s.sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if err := s.setupMounts(); err != nil {
		warn("stage1 supervisor: " + err.Error())
		return 254
	}
	cfgFile := os.NewFile(ConfigFd, "config")
	r := bufio.NewReaderSize(cfgFile, 16<<10)
	cfg, err := Decode(r)
	if err != nil {
		cfgFile.Close()
		warn("stage1 supervisor: read the pod configuration: " + err.Error())
		return 254
	}
	s.cfg = cfg
	// The sockets of socket activation go to the launchers of the apps
	// that asked for them, and to no other.
	// They must be sockets: anything else there is none of theirs.
	for i := 0; i < cfg.ListenFds; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(ListenFd+i, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			warn("stage1 supervisor: descriptor " + strconv.Itoa(ListenFd+i) + " is not a socket of socket activation: the apps get none")
			cfg.ListenFds = 0
			break
		}
		unix.CloseOnExec(ListenFd + i)
	}
	if cfg.Debug {
		s.logf = func(msg string) {
			warn("stage1 [" + Millis(time.Duration(time.Now().UnixNano()-cfg.Epoch)) + "ms] supervisor: " + msg)
		}
	}
	// The rest of the stream is the start line, once the pod's networks
	// are set up (at once without networks).
	gate := make(chan string, 1)
	go func() {
		line, _ := r.ReadString('\n')
		cfgFile.Close()
		line = strings.TrimSuffix(line, "\n")
		if line != StartLine && line != StartWithResolv {
			line = ""
		}
		gate <- line
	}()
	code, err := s.run(ctx, gate)
	if err != nil {
		warn("stage1 supervisor: " + err.Error())
		return 254
	}
	return code
}

// setupMounts makes the pod's mount namespace ready for the launchers:
// private mount propagation (nothing the apps mount reaches the host),
// and the launcher binary read-only.
func (s *supervisor) setupMounts() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return wrap("make the pod's mounts private", err)
	}
	// The launchers run from a read-only bind of their binary, in this
	// mount namespace only: an app that gets the launcher's binary run
	// again (a "#!/proc/self/exe" script) cannot open it for writing
	// through /proc/PID/exe (EROFS), which would change it for every
	// pod (CVE-2019-5736).
	l := s.launcher
	if err := unix.Mount(l, l, "", unix.MS_BIND, ""); err != nil {
		return wrap("bind the launcher "+l+" read-only", err)
	}
	if err := unix.Mount("", l, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		return wrap("bind the launcher "+l+" read-only", err)
	}
	return nil
}

// setupPod prepares the rest of the pod-wide namespaces: the hostname, lo
// (the pod's CNI networks, if any, are set up meanwhile by the setup
// helper).
func (s *supervisor) setupPod() error {
	if err := unix.Sethostname([]byte(s.cfg.Hostname)); err != nil {
		return wrap("set hostname "+strconv.Quote(s.cfg.Hostname), err)
	}
	if s.cfg.Loopback {
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
		return wrap("bring lo up", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return wrap("bring lo up", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return wrap("bring lo up: read flags", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return wrap("bring lo up", err)
	}
	return nil
}

func (s *supervisor) run(ctx context.Context, gate <-chan string) (int, error) {
	sigs := s.sigs
	s.logf("running")
	if err := s.setupPod(); err != nil {
		return 0, err
	}
	// Up to three launchers per app (pre-start, app, post-stop) report.
	s.starts = make(chan startEvent, 3*len(s.cfg.Apps))
	s.timeouts = make(chan handlerTimeout, 2*len(s.cfg.Apps))
	notes := make(chan note, 16)
	for i := range s.cfg.Apps {
		a := &s.cfg.Apps[i]
		st := &appState{cfg: a}
		s.apps[a.Name] = st
		s.order = append(s.order, st)
		if a.SupportsNotify {
			if err := listenNotify(NotifySocket(s.cfg.UUID, a.Name), a.Name, notes); err != nil {
				return 0, err
			}
		}
	}
	s.sendLogPipes()
	// The launchers prepare their apps' roots while the pod's networks
	// are set up; they exec the apps once they get the start line.
	for _, st := range s.order {
		ph, launch := phaseApp, st.cfg.Launch
		if st.cfg.PreStart != nil {
			ph, launch = phasePreStart, st.cfg.PreStart.Launch
		}
		if err := s.launch(st, ph, launch); err != nil {
			// The launcher never ran: count the app as failed to start.
			warn("stage1: app " + st.cfg.Name + ": " + err.Error())
			st.exited = true
			s.recordExit(st, 254)
		}
	}
	for s.live > 0 || s.pending > 0 || !s.gated {
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
				s.logf("got " + sig.String() + ": stopping the pod")
				s.stopTimeout()
				s.stop(sig.(syscall.Signal))
			}
		case line := <-gate:
			s.opened(line)
		case ev := <-s.starts:
			s.started(ev)
		case to := <-s.timeouts:
			s.timeout(to)
		case n := <-notes:
			s.notified(n)
		case <-ctx.Done():
			s.logf("cancelled: killing the pod")
			unix.Kill(-1, unix.SIGKILL)
			return 0, ctx.Err()
		case <-graceC:
			s.logf("grace period over: killing what is left")
			unix.Kill(-1, unix.SIGKILL)
			s.grace = nil
			s.killed = true
		}
	}
	for _, app := range s.oomApps {
		warn("rkt: app " + app + " was killed: out of memory (exit status 137): raise its --memory limit")
	}
	// Every app is gone: the host-side process may get the network
	// teardown going while this process and the pod's namespaces end.
	s.events.WriteString("exiting\n")
	if s.failed {
		return s.firstFail, nil
	}
	if s.start == "" || s.handlerFailed {
		// The setup did not finish (nothing ran), or a post-stop
		// handler failed.
		return 254, nil
	}
	return 0, nil
}

// sendLogPipes makes each app's stdout and stderr pipes and sends their
// read ends to the host-side process (see LogFd). An app whose pipes
// could not be sent writes to the supervisor's own stdout and stderr.
func (s *supervisor) sendLogPipes() {
	if s.logs == nil {
		return
	}
	defer func() {
		s.logs.Close()
		s.logs = nil
	}()
	sock := int(s.logs.Fd())
	for _, st := range s.order {
		msg := []byte(LogApp + st.cfg.Name)
		if s.interactive {
			// Its terminal is its stdout and stderr: nothing to log.
			sendmsg(sock, msg, nil)
			continue
		}
		var p [4]int
		if err := unix.Pipe2(p[:2], unix.O_CLOEXEC); err != nil {
			warn("stage1: app " + st.cfg.Name + ": its output is not logged: " + err.Error())
			continue
		}
		if err := unix.Pipe2(p[2:], unix.O_CLOEXEC); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			warn("stage1: app " + st.cfg.Name + ": its output is not logged: " + err.Error())
			continue
		}
		err := sendmsg(sock, msg, unix.UnixRights(p[0], p[2]))
		unix.Close(p[0])
		unix.Close(p[2])
		if err != nil {
			unix.Close(p[1])
			unix.Close(p[3])
			warn("stage1: app " + st.cfg.Name + ": its output is not logged: send its pipes: " + err.Error())
			continue
		}
		st.stdout = os.NewFile(uintptr(p[1]), "stdout")
		st.stderr = os.NewFile(uintptr(p[3]), "stderr")
	}
}

func sendmsg(fd int, msg, oob []byte) error {
	for {
		err := unix.Sendmsg(fd, msg, oob, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// opened handles the end of the configuration stream: the start line is
// passed on to the launchers, which exec their apps; without one, the
// launchers are told to give up (EOF).
func (s *supervisor) opened(line string) {
	s.gated, s.start = true, line
	if line == "" {
		s.logf("the pod's setup did not finish: not starting the apps")
	} else {
		s.logf("starting the apps")
	}
	for _, st := range s.order {
		if st.launch == nil {
			continue
		}
		if line != "" {
			// A launcher that died meanwhile: EPIPE, reported by reap.
			st.launch.WriteString(line + "\n")
			s.armTimeout(st)
		}
		st.launch.Close()
		st.launch = nil
	}
}

// armTimeout starts the timeout of the event handler st's launcher runs
// (from the start line on: a pre-start handler waits for the pod's
// networks, which its timeout does not count).
func (s *supervisor) armTimeout(st *appState) {
	if st.phase == phaseApp || s.cfg.HandlerTimeout <= 0 {
		return
	}
	to := handlerTimeout{st: st, pid: st.pid}
	st.timer = time.AfterFunc(s.cfg.HandlerTimeout, func() { s.timeouts <- to })
}

// timeout kills an event handler that ran out of time: its launcher's
// session (the handler and what it started in it).
func (s *supervisor) timeout(to handlerTimeout) {
	st := to.st
	if s.byPid[to.pid] != st || st.pid != to.pid || st.phase == phaseApp {
		return // it exited meanwhile
	}
	st.timedOut = true
	s.logf("app " + st.cfg.Name + ": " + st.phase.handlerName() + " event handler timed out: killing it")
	unix.Kill(-to.pid, unix.SIGKILL)
	unix.Kill(to.pid, unix.SIGKILL)
}

// handlerExited handles the end of st's event handler (its launcher's
// exit code): a pre-start handler that succeeded lets the app start; one
// that failed fails the app (254) and so the pod; a post-stop handler
// that failed is reported and makes the pod's exit code 254 if no app
// failed.
func (s *supervisor) handlerExited(st *appState, code int) {
	ph, timedOut := st.phase, st.timedOut
	st.timedOut = false
	h := st.cfg.PreStart
	if ph == phasePostStop {
		h = st.cfg.PostStop
	}
	what := "rkt: app " + st.cfg.Name + ": " + ph.handlerName() + " event handler " + h.Exec
	failed := ""
	switch {
	case timedOut:
		failed = what + " did not finish within " + s.cfg.HandlerTimeout.String() + ": killed (the pod annotation " + stage1abi.HandlerTimeoutAnnotation + " sets the timeout)"
	case code != 0:
		failed = what + " failed with exit status " + strconv.Itoa(code)
	}
	if ph == phasePostStop {
		s.logf("app " + st.cfg.Name + ": post-stop event handler exited with " + strconv.Itoa(code))
		if failed != "" {
			warn(failed)
			s.handlerFailed = true
		}
		return
	}
	s.logf("app " + st.cfg.Name + ": pre-start event handler exited with " + strconv.Itoa(code))
	notStarted := func(code int) {
		st.exited, st.postStopped = true, true
		s.recordExit(st, code)
	}
	switch {
	case s.start == "":
		// Its launcher gave up: the pod's setup did not finish.
		notStarted(254)
	case failed != "":
		warn(failed + ": the app is not started (exit status 254)")
		notStarted(254)
	case s.stopping:
		s.logf("app " + st.cfg.Name + ": the pod is stopping: not starting the app")
		notStarted(128 + int(s.stopSig))
	default:
		if err := s.launch(st, phaseApp, st.cfg.Launch); err != nil {
			warn("stage1: app " + st.cfg.Name + ": " + err.Error())
			notStarted(254)
		}
	}
}

// postStop starts st's post-stop handler once the app has exited after
// it was exec'd (an app whose launcher failed never ran: no post-stop).
// After the grace period ran out nothing more starts.
func (s *supervisor) postStop(st *appState) {
	if st.postStopped || !st.exited || !st.launched || st.cfg.PostStop == nil {
		return
	}
	st.postStopped = true
	if !st.started {
		return
	}
	if s.killed {
		warn("rkt: app " + st.cfg.Name + ": post-stop event handler " + st.cfg.PostStop.Exec + " not run: the pod was killed after its grace period")
		return
	}
	if err := s.launch(st, phasePostStop, st.cfg.PostStop.Launch); err != nil {
		warn("stage1: app " + st.cfg.Name + ": post-stop event handler: " + err.Error())
		s.handlerFailed = true
	}
}

// launch starts a launcher of one app for phase ph (the app, or one of
// its event handlers) and sends it its configuration (launch). Before
// the pod's networks are set up it keeps the configuration pipe open
// for the start line; after, it passes the start line on at once.
func (s *supervisor) launch(st *appState, ph phase, launch []byte) error {
	a := st.cfg
	lp, err := s.fork(st, ph)
	if err != nil {
		return wrap("start the stage2 launcher", err)
	}
	st.pid, st.phase = lp.pid, ph
	s.byPid[lp.pid] = st
	s.live++
	s.pending++
	if ph == phaseApp {
		s.logf("app " + a.Name + ": launcher pid " + strconv.Itoa(lp.pid))
	} else {
		s.logf("app " + a.Name + ": " + ph.handlerName() + " event handler's launcher pid " + strconv.Itoa(lp.pid))
	}
	statusR := lp.status
	starts := s.starts
	go func() {
		msg, _ := io.ReadAll(statusR)
		statusR.Close()
		starts <- startEvent{app: a.Name, phase: ph, msg: strings.TrimSpace(string(msg))}
	}()
	// The launcher reads while we write: a large configuration cannot
	// block us for long. On failure the launcher fails on the truncated
	// configuration and reports.
	if _, err := lp.cfg.Write(append(launch, '\n')); err != nil {
		s.logf("app " + a.Name + ": send configuration: " + err.Error())
	}
	if !s.gated {
		st.launch = lp.cfg
		return nil
	}
	// Started after the pod's setup (the app after its pre-start
	// handler, a post-stop handler): the setup succeeded, or nothing
	// would have run before.
	if s.start != "" {
		lp.cfg.WriteString(s.start + "\n")
		s.armTimeout(st)
	}
	lp.cfg.Close()
	return nil
}

// fork starts a launcher of app a in a mount namespace of its own, right
// in a's cgroup v2 directory (else the launcher joins it itself: its
// argument), in a session of its own if a asks (an event handler's
// launcher always: its timeout kills that session).
func (s *supervisor) fork(st *appState, ph phase) (*launcherProc, error) {
	a := st.cfg
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgR.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		cfgW.Close()
		return nil, err
	}
	defer statusW.Close()
	// An interactive app gets a terminal of its own from its launcher:
	// stdin is /dev/null for every launcher.
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		cfgW.Close()
		statusR.Close()
		return nil, err
	}
	defer stdin.Close()
	stdout, stderr := os.Stdout, os.Stderr
	if st.stdout != nil {
		stdout, stderr = st.stdout, st.stderr
	}
	attr := &syscall.ProcAttr{
		Env:   []string{},
		Files: []uintptr{stdin.Fd(), stdout.Fd(), stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS},
	}
	if a.Listen && s.cfg.ListenFds > 0 && ph == phaseApp {
		// The sockets first, as 3.. (where the app gets them; its
		// event handlers do not); the launcher's own descriptors after
		// them.
		for i := 0; i < s.cfg.ListenFds; i++ {
			attr.Files = append(attr.Files, uintptr(ListenFd+i))
		}
		attr.Env = []string{LaunchListenFdsEnv + "=" + strconv.Itoa(s.cfg.ListenFds)}
	}
	attr.Files = append(attr.Files, cfgR.Fd(), statusW.Fd())
	if s.term != nil && ph == phaseApp {
		// The one app of an interactive pod: only its launcher has the
		// terminal socket, and only until it execs the app (not its
		// event handlers').
		attr.Files = append(attr.Files, s.term.Fd())
		defer func() {
			s.term.Close()
			s.term = nil
		}()
	}
	attr.Dir = s.cfg.PodDir
	attr.Sys.Setsid = a.NewSession || ph != phaseApp
	argv := []string{LauncherArgvName}
	pid := 0
	if a.UnifiedCgroup != "" {
		if fd, err := unix.Open(a.UnifiedCgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
			pid, _ = syscall.ForkExec(s.launcher, argv, attr)
			unix.Close(fd)
			attr.Sys.UseCgroupFD = false
		}
		if pid <= 0 {
			argv = append(argv, a.UnifiedCgroup)
		}
	}
	if pid <= 0 {
		if pid, err = syscall.ForkExec(s.launcher, argv, attr); err != nil {
			cfgW.Close()
			statusR.Close()
			return nil, err
		}
	}
	return &launcherProc{pid: pid, cfg: cfgW, status: statusR}, nil
}

// started handles a launcher's outcome.
func (s *supervisor) started(ev startEvent) {
	s.pending--
	st := s.apps[ev.app]
	if ev.phase == phaseApp {
		st.launched = true
		defer s.postStop(st) // if the app has exited already
	}
	if ev.msg != "" {
		// "<code> <message>"
		_, msg, _ := strings.Cut(ev.msg, " ")
		if ev.phase != phaseApp {
			msg = ev.phase.handlerName() + " event handler: " + msg
		}
		warn("rkt: app " + ev.app + ": " + msg)
		return
	}
	if ev.phase != phaseApp {
		return // the handler was exec'd
	}
	if s.start == "" {
		// Launchers exec their apps only after the start line: this one
		// gave up, or was killed, before.
		return
	}
	st.started = true
	if f, err := os.Create(st.cfg.StartedFile); err == nil {
		f.Close()
	}
	s.logf("app " + ev.app + " started")
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
			warn("stage1: mark the pod ready: " + err.Error())
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
		s.live--
		if st.timer != nil {
			st.timer.Stop()
			st.timer = nil
		}
		if st.phase != phaseApp {
			s.handlerExited(st, code)
			continue
		}
		st.exited = true
		s.logf("app " + st.cfg.Name + " (pid " + strconv.Itoa(pid) + ") exited with " + strconv.Itoa(code))
		s.recordExit(st, code)
		s.postStop(st)
	}
}

// recordExit writes the app's status and applies the exit policy. An app
// killed by SIGKILL whose memory cgroup saw an OOM kill is recorded as
// out of memory.
func (s *supervisor) recordExit(st *appState, code int) {
	reason := ""
	if code == 128+int(unix.SIGKILL) {
		for _, f := range st.cfg.OOMEvents {
			if exitstatus.OOMKills(f) > 0 {
				reason = exitstatus.ReasonOOM
				s.oomApps = append(s.oomApps, st.cfg.Name)
			}
		}
	}
	err := exitstatus.Write(st.cfg.StatusFile, code, reason)
	if errors.Is(err, os.ErrNotExist) {
		// An app that failed before the setup helper made the status
		// directory (it does while the launchers prepare the apps).
		if err = os.MkdirAll(filepath.Dir(st.cfg.StatusFile), 0o755); err == nil {
			err = exitstatus.Write(st.cfg.StatusFile, code, reason)
		}
	}
	if err != nil {
		warn("stage1: app " + st.cfg.Name + ": record exit status: " + err.Error())
	}
	if code != 0 && !s.failed {
		s.failed, s.firstFail = true, code
		if s.live > 0 {
			s.logf("app " + st.cfg.Name + " failed: stopping the pod")
			s.stop(unix.SIGTERM)
		}
	}
}

// stopTimeout applies the grace period of a stop asked for with a timeout
// (rkt stop --timeout), if the stop entrypoint recorded one: it replaces
// the pod's, and rearms a grace period already running.
func (s *supervisor) stopTimeout() {
	p := filepath.Join(s.cfg.PodDir, stage1abi.StopTimeoutFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return
	}
	os.Remove(p)
	d, err := time.ParseDuration(strings.TrimSpace(string(data)))
	if err != nil || d <= 0 {
		warn("stage1: ignoring the stop timeout " + strconv.Quote(string(data)) + ": not a duration")
		return
	}
	s.logf("stop timeout " + d.String())
	s.cfg.GracePeriod = d
	if s.grace != nil {
		s.grace.Reset(d)
	}
}

// stop forwards sig to every running app (or pre-start handler) and arms
// the grace period. Post-stop handlers run on, within their timeout and
// the grace period.
func (s *supervisor) stop(sig syscall.Signal) {
	for _, st := range s.order {
		if st.pid > 0 && !st.exited {
			unix.Kill(st.pid, sig)
		}
	}
	if !s.stopping {
		s.stopping, s.stopSig = true, sig
		s.grace = time.NewTimer(s.cfg.GracePeriod)
	}
}

// note is one datagram an app sent to its notification socket.
type note struct {
	app  string
	msgs []string // its assignments (lines), as sent
}

// notified handles an app's notification: READY=1 counts towards the
// pod's readiness (which the host-side process reports with READY=1 of
// its own once every app is ready); the rest is relayed to systemd, but
// for what only rkt may say (Relayed).
func (s *supervisor) notified(n note) {
	st := s.apps[n.app]
	if st == nil {
		return
	}
	var relay []string
	for _, m := range n.msgs {
		if m == "READY=1" {
			if !st.ready {
				s.logf("app " + n.app + " is ready")
				st.ready = true
				s.checkReady()
			}
			continue
		}
		if Relayed(m) {
			relay = append(relay, m)
		}
	}
	if len(relay) > 0 {
		s.events.WriteString(NotifyEvent + strconv.Quote(strings.Join(relay, "\n")) + "\n")
	}
}

// listenNotify opens an app's notification socket name (abstract, in the
// pod's network namespace) and reports each datagram sent from inside the
// pod.
func listenNotify(name, app string, notes chan<- note) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return wrap("app "+app+": notify socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return wrap("app "+app+": bind notify socket "+name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return wrap("app "+app+": notify socket credentials", err)
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
			var msgs []string
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if l != "" {
					msgs = append(msgs, l)
				}
			}
			if len(msgs) > 0 {
				notes <- note{app: app, msgs: msgs}
			}
		}
	}()
	return nil
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

// Millis formats d in milliseconds for the debug timestamps, like
// fmt's %6.2f.
func Millis(d time.Duration) string {
	s := strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
	for len(s) < 6 {
		s = " " + s
	}
	return s
}

// warn writes a line to stderr.
func warn(msg string) {
	os.Stderr.WriteString(msg + "\n")
}

// wrapped is an error with context, like fmt.Errorf("%s: %w") without fmt.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }

func wrap(msg string, err error) error { return &wrapped{msg, err} }
