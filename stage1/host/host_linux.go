// Package host is the default flavor's run entrypoint (/init): the pod's
// host-side process. stage0 execs it with the pod lock, so it has the
// PID and cgroup of `rkt run` and stays for the pod's whole life; that is
// why it is small (it shares a small binary with the supervisor, and
// imports neither encoding/json nor fmt nor any large package) and hands
// everything heavy to helper processes of the big stage1 binary:
//
//   - the setup helper (rkt-setup, stage1/run) reads the pod, writes its
//     files, makes its cgroups, sends the supervisor its configuration,
//     sets up the CNI networks and then lets the apps start;
//   - the teardown helper (rkt-netdown) deletes the networks once the pod
//     has exited.
//
// The host-side process itself starts the supervisor (process 1 of the
// pod's new namespaces, from this same binary), forwards SIGTERM, SIGINT
// and SIGHUP to it, tells systemd (NOTIFY_SOCKET) when the pod is ready,
// relays an interactive app's terminal (terminal_linux.go), and exits
// with the pod's exit code.
package host

import (
	"bufio"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/stage1/supervisor"
)

// ExitFailure is the exit code of a stage1 failure.
const ExitFailure = 254

// Names of the big stage1 binary's helper modes (argv[0]), run as
// `NAME EPOCH RUN-ARGS...` (EPOCH: the host-side process's start in Unix
// nanoseconds, the origin of the debug timestamps), and the file names
// of the binaries beside this one.
const (
	SetupArgvName   = "rkt-setup"
	NetdownArgvName = "rkt-netdown"
	BigBinary       = "stage1"
	LauncherBinary  = "stage2"
)

// Descriptors of the setup helper.
const (
	// SetupConfigFd: helper -> supervisor (its ConfigFd): the supervisor's
	// configuration, then the start line.
	SetupConfigFd = 3
	// SetupControlFd: helper -> host-side process: first the clone line
	// (see CloneLine), then "netdown\n" once networks were set up that
	// must be torn down when the pod exits.
	SetupControlFd = 4
	// SetupPidFd: host-side process -> helper: the supervisor's PID and a
	// newline, or "0\n" if it could not be started.
	SetupPidFd = 5
)

// CloneLine is what the setup helper tells the host-side process about
// the supervisor to start, once it has read the run arguments.
type CloneLine struct {
	NewNet      bool // a network namespace of its own (not --net=host)
	NewIPC      bool // an IPC namespace of its own (not --ipc=parent)
	Interactive bool // the app gets the terminal
	Debug       bool
	// For the apps' logs: the pod's UUID (no space in it), the size of
	// each app's log file (0: the default), and whether lines on the
	// console are prefixed with the app's name in a pod of several apps.
	UUID      string
	LogSize   int64
	LogPrefix bool
}

// String is the line, without its newline.
func (c CloneLine) String() string {
	b := func(k string, v bool) string {
		if v {
			return " " + k + "=1"
		}
		return " " + k + "=0"
	}
	return "clone" + b("net", c.NewNet) + b("ipc", c.NewIPC) + b("interactive", c.Interactive) + b("debug", c.Debug) +
		" uuid=" + c.UUID + " logsize=" + strconv.FormatInt(c.LogSize, 10) + b("logprefix", c.LogPrefix)
}

// ParseCloneLine parses a CloneLine's String.
func ParseCloneLine(s string) (CloneLine, bool) {
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != "clone" {
		return CloneLine{}, false
	}
	var c CloneLine
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		on := v == "1"
		switch k {
		case "net":
			c.NewNet = on
		case "ipc":
			c.NewIPC = on
		case "interactive":
			c.Interactive = on
		case "debug":
			c.Debug = on
		case "uuid":
			c.UUID = v
		case "logsize":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return CloneLine{}, false
			}
			c.LogSize = n
		case "logprefix":
			c.LogPrefix = on
		default:
			return CloneLine{}, false
		}
	}
	return c, true
}

// proc is a child process and, once it has exited, its exit code.
type proc struct {
	pid  int
	done chan int
	// exiting (the supervisor's): every app has exited.
	exiting chan struct{}
}

func start(path string, argv []string, attr *syscall.ProcAttr) (*proc, error) {
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, err
	}
	p := &proc{pid: pid, done: make(chan int, 1)}
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		if ws.Signaled() {
			p.done <- 128 + int(ws.Signal())
			return
		}
		p.done <- ws.ExitStatus()
	}()
	return p, nil
}

// Main runs the entrypoint with args (the run arguments stage0 gives,
// without argv[0]) and returns the exit code: the pod's, or ExitFailure.
func Main(ctx context.Context, args []string) int {
	h := &hostProc{epoch: time.Now(), logf: func(string) {}}
	return h.run(ctx, args)
}

type hostProc struct {
	epoch time.Time
	logf  func(msg string)
}

func (h *hostProc) run(ctx context.Context, args []string) int {
	// Signals are caught from the start, so none is lost: each goes to
	// the helper while it runs and to the supervisor once it exists.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	// The sockets of socket activation (LISTEN_FDS, for this process:
	// rkt run exec'd us in place) go to the supervisor only.
	listenFds, err := fds.Listening()
	if err != nil {
		return fail("socket activation: " + err.Error() + ": start rkt with the sockets systemd passes, or without LISTEN_FDS")
	}
	if err := closeInherited(); err != nil {
		return fail("keep the caller's descriptors from the pod: " + err.Error())
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fail("find the stage1 binaries: " + err.Error())
	}
	big := filepath.Join(filepath.Dir(self), BigBinary)
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fail(err.Error())
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return fail(err.Error())
	}
	pidR, pidW, err := os.Pipe()
	if err != nil {
		return fail(err.Error())
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err.Error())
	}
	argv := append([]string{SetupArgvName, strconv.FormatInt(h.epoch.UnixNano(), 10)}, args...)
	helper, err := start(big, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{devNull.Fd(), os.Stdout.Fd(), os.Stderr.Fd(), cfgW.Fd(), ctlW.Fd(), pidR.Fd()},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	devNull.Close()
	cfgW.Close()
	ctlW.Close()
	pidR.Close()
	if err != nil {
		return fail("start the setup helper " + big + ": " + err.Error())
	}
	ctl := bufio.NewReader(ctlR)
	line, _ := ctl.ReadString('\n')
	clone, ok := ParseCloneLine(strings.TrimSuffix(line, "\n"))
	if !ok {
		// The helper failed before starting (bad arguments): it said why.
		pidW.Close()
		cfgR.Close()
		if code := <-helper.done; code != 0 {
			return ExitFailure // it said why
		}
		return fail("the setup helper ended without saying how to start the pod")
	}
	if clone.Debug {
		h.logf = func(msg string) {
			warn("stage1 [" + supervisor.Millis(time.Since(h.epoch)) + "ms] " + msg)
		}
	}
	// A closed stdout or stderr (`rkt run ... | head`) must not kill
	// this process, which relays the apps' output: writes fail with
	// EPIPE instead. (Notify, not Ignore: an ignored signal would stay
	// ignored in the pod.)
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	logs, err := newPodLogs(clone, h.logf)
	if err != nil {
		pidW.WriteString("0\n")
		pidW.Close()
		<-helper.done
		return fail("set up the apps' logs: " + err.Error())
	}
	defer logs.finish()
	var term *terminal
	if clone.Interactive {
		if term, err = newTerminal(); err != nil {
			pidW.WriteString("0\n")
			pidW.Close()
			<-helper.done
			return fail("set up the interactive app's terminal: " + err.Error())
		}
		// Every way out of here restores the operator's terminal.
		defer term.restore()
	}
	sup, err := h.startSupervisor(clone, cfgR, filepath.Join(filepath.Dir(self), LauncherBinary), term, logs, listenFds)
	if err != nil {
		pidW.WriteString("0\n")
		pidW.Close()
		<-helper.done
		return fail("start the pod supervisor: " + err.Error())
	}
	pidW.WriteString(strconv.Itoa(sup.pid) + "\n")
	pidW.Close()
	if term != nil {
		term.started()
	}
	logs.started()
	h.logf("supervisor started, pid " + strconv.Itoa(sup.pid))
	// "netdown" from the helper: there are networks to tear down when
	// the pod exits.
	netdownC := make(chan struct{}, 1)
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		for {
			l, err := ctl.ReadString('\n')
			if l == "netdown\n" {
				netdownC <- struct{}{}
			}
			if err != nil {
				break
			}
		}
		ctlR.Close()
	}()
	// The teardown helper starts as soon as the supervisor says every app
	// has exited (its Go runtime starts meanwhile), and begins once the
	// supervisor, and with it the pod's network namespace, is gone.
	var netdown *netdownProc
	wantNetdown := false
	helperRunning, supRunning := true, true
	setupFailed := false
	code := 0
	for helperRunning || supRunning {
		select {
		case <-netdownC:
			wantNetdown = true
		case <-sup.exiting:
			if wantNetdown && netdown == nil && !setupFailed {
				netdown = h.startNetdown(big, args)
			}
		case sig := <-sigs:
			h.logf("got " + sig.String() + ": forwarding it to the pod")
			if helperRunning {
				unix.Kill(helper.pid, sig.(syscall.Signal))
			}
			if supRunning {
				unix.Kill(sup.pid, sig.(syscall.Signal))
			}
		case c := <-helper.done:
			helperRunning = false
			if c != 0 {
				// It said why, and undid what it did (after stopping the
				// supervisor, which started no app).
				setupFailed, code = true, ExitFailure
				if supRunning {
					unix.Kill(sup.pid, unix.SIGKILL)
				}
			} else {
				h.logf("setup done")
			}
		case c := <-sup.done:
			supRunning = false
			if !setupFailed {
				code = c
				// An app the supervisor did not record died with it: the
				// supervisor was killed (rkt stop --force), and the kernel
				// SIGKILLed the pod's PID namespace.
				exitstatus.FillKilled(exitstatus.Dir)
			}
			h.logf("pod exited with " + strconv.Itoa(c))
			netdown.start()
			if term != nil {
				term.finish()
			}
		case <-ctx.Done():
			unix.Kill(sup.pid, unix.SIGKILL)
		}
	}
	// The apps' last lines, before anything else is said.
	logs.finish()
	if setupFailed {
		return code
	}
	// Whatever the helper said, it said before it exited: read it all
	// (the control pipe's end follows the helper's exit).
	<-ctlDone
	select {
	case <-netdownC:
		wantNetdown = true
	default:
	}
	if wantNetdown && netdown == nil {
		netdown = h.startNetdown(big, args)
		netdown.start()
	}
	netdown.wait(h)
	return code
}

// startSupervisor starts the supervisor from this binary as process 1 of
// new PID, mount, UTS (and IPC and network, unless shared) namespaces,
// as `rkt-supervisor LAUNCHER [interactive]`, with its configuration to
// come on cfg and the socket for the apps' output pipes (logs) as its
// supervisor.LogFd, and forwards its readiness. It is the leader of a session
// of its own. The supervisor of an interactive pod (term) gets none of
// this process's stdio, which may be the operator's terminal: /dev/null
// as stdin, term's pipe as stdout and stderr, and term's socket.
func (h *hostProc) startSupervisor(clone CloneLine, cfg *os.File, launcher string, term *terminal, logs *podLogs, listenFds int) (*proc, error) {
	defer cfg.Close()
	evR, evW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer evW.Close()
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS)
	if clone.NewIPC {
		flags |= unix.CLONE_NEWIPC
	}
	if clone.NewNet {
		flags |= unix.CLONE_NEWNET
	}
	argv := []string{supervisor.ArgvName, launcher}
	if clone.Interactive {
		argv = append(argv, "interactive")
	}
	files := []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd(), cfg.Fd(), evW.Fd(), ^uintptr(0), logs.pod.Fd()}
	if term != nil {
		devNull, err := os.Open(os.DevNull)
		if err != nil {
			evR.Close()
			return nil, err
		}
		defer devNull.Close()
		files = []uintptr{devNull.Fd(), term.errW.Fd(), term.errW.Fd(), cfg.Fd(), evW.Fd(), term.podSock.Fd(), logs.pod.Fd()}
	}
	if listenFds > 0 {
		for len(files) < supervisor.ListenFd {
			files = append(files, ^uintptr(0)) // closed in the child
		}
		for _, fd := range fds.Passed(listenFds) {
			files = append(files, uintptr(fd))
		}
	}
	p, err := start("/proc/self/exe", argv, &syscall.ProcAttr{
		Env:   []string{},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags: flags,
			Setsid:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	})
	if err != nil {
		evR.Close()
		return nil, err
	}
	p.exiting = make(chan struct{}, 1)
	go h.readEvents(evR, p.exiting)
	return p, nil
}

// netdownProc is the teardown helper: it deletes the pod's networks once
// its processes are gone (gc would retry if it fails). It waits for EOF
// on its fd 3 before it begins.
type netdownProc struct {
	p    *proc
	gate *os.File // closed by start
	err  error
}

func (h *hostProc) startNetdown(big string, args []string) *netdownProc {
	n := &netdownProc{}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		n.err = err
		return n
	}
	defer gateR.Close()
	n.gate = gateW
	argv := append([]string{NetdownArgvName, strconv.FormatInt(h.epoch.UnixNano(), 10)}, args...)
	n.p, n.err = start(big, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, os.Stdout.Fd(), os.Stderr.Fd(), gateR.Fd()},
	})
	return n
}

// start lets the teardown helper begin (the pod's processes are gone).
func (n *netdownProc) start() {
	if n != nil && n.gate != nil {
		n.gate.Close()
		n.gate = nil
	}
}

// wait waits for the teardown helper.
func (n *netdownProc) wait(h *hostProc) {
	if n == nil {
		return
	}
	n.start()
	if n.err != nil {
		warn("stage1: the pod exited but its networks are still set up: start the teardown helper: " + n.err.Error() + " (rkt gc tears them down)")
		return
	}
	if code := <-n.p.done; code != 0 {
		warn("stage1: the pod exited but its networks are still set up (rkt gc tries again)")
		return
	}
	h.logf("networks torn down")
}

// readEvents reads the supervisor's events: on "ready" it tells systemd
// (NOTIFY_SOCKET) that the pod is ready (this process is the unit's main
// PID, so the notification is accepted with NotifyAccess=main); it sends
// on the apps' notifications (supervisor.NotifyEvent) the same way; on
// "exiting" it tells exiting.
func (h *hostProc) readEvents(ev *os.File, exiting chan<- struct{}) {
	defer ev.Close()
	r := bufio.NewReader(ev)
	for {
		line, err := r.ReadString('\n')
		switch line {
		case "ready\n":
			h.logf("pod ready")
			if err := sdNotify("READY=1"); err != nil {
				warn("stage1: tell systemd the pod is ready: " + err.Error())
			}
		case "exiting\n":
			exiting <- struct{}{}
		default:
			// An app's notification, relayed from this process: the
			// unit's main pid (NotifyAccess=main accepts it).
			if q, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), supervisor.NotifyEvent); ok {
				if state, err := strconv.Unquote(q); err == nil {
					if err := sdNotify(state); err != nil {
						warn("stage1: relay an app's notification to systemd: " + err.Error())
					}
				}
			}
		}
		if err != nil {
			return
		}
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

// closeInherited makes every descriptor above stderr close on exec:
// the pod and tree locks stage0 handed over (RKT_LOCK_FD,
// RKT_TREE_LOCK_FDS), which this process keeps for the pod's lifetime
// (it outlives the pod's processes) and nothing else may hold, and
// whatever rkt's caller left open without close-on-exec, which must not
// reach the helpers, the CNI plugins or the apps. Every process started
// from here gets just the descriptors of its Files (the sockets of
// socket activation, fds.Passed, go to the supervisor that way).
func closeInherited() error {
	return fds.CloseOnExecFrom(3)
}

func warn(msg string) { os.Stderr.WriteString(msg + "\n") }

func fail(msg string) int {
	warn("stage1: " + msg)
	return ExitFailure
}
