package stage2

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/pkg/seccomp"
)

// Launch sets up the app's environment and execs it; it returns only on
// failure, with a *SetupError carrying the exit code. It must run on a
// locked OS thread (runtime.LockOSThread) in a fresh mount namespace that
// is a private copy of the supervisor's: the bounding set, no_new_privs
// and the seccomp filter are set on the calling thread, which then execs.
func Launch(ctx context.Context, a *App) error {
	return launch(ctx, a, nil, func() (bool, error) { return false, nil })
}

// launch is Launch that, once the app's root is mounted, waits for start
// to say that the app may be exec'd (the pod's networks are set up), and
// whether to use a.NetResolvConf. term is the terminal socket of an app
// with a.Terminal.
func launch(ctx context.Context, a *App, term *os.File, start func() (bool, error)) error {
	trace := func(string) {}
	if a.DebugEpoch != 0 {
		who := "app " + a.Name
		if a.Handler != "" {
			who += " (" + a.Handler + " event handler)"
		}
		trace = func(phase string) {
			ms := float64(time.Now().UnixNano()-a.DebugEpoch) / 1e6
			fmt.Fprintf(os.Stderr, "stage2 [%6.2fms] %s: %s\n", ms, who, phase)
		}
	}
	trace("launcher running")
	joined := joinCgroups(a.CgroupDirs)
	if err := setOOMScoreAdj(a.OOMScoreAdj); err != nil {
		return err
	}
	if err := setupRoot(a); err != nil {
		return err
	}
	trace("root mounted")
	var tty *podTerminal
	if a.Terminal {
		if term == nil {
			return setupErr("the app wants a terminal, and the launcher has no terminal socket")
		}
		pts, err := inRoot(a.Root, "/dev/pts")
		if err != nil {
			return err
		}
		if tty, err = openTerminal(term, pts); err != nil {
			return err
		}
		trace("terminal sent")
	}
	if err := <-joined; err != nil {
		return err
	}
	trace("cgroups joined")
	filter, err := a.Seccomp.assemble()
	if err != nil {
		return err
	}
	netResolv, err := start()
	if err != nil {
		return err
	}
	trace("started")
	if a.AppPidFile != "" {
		// /proc is still the host's procfs: /proc/self is the host PID,
		// which the app keeps across exec. (Its directory is made while
		// the launcher prepares the app.)
		link, err := os.Readlink("/proc/self")
		if err != nil {
			return setupErr("find the app's host PID: %w", err)
		}
		pid, err := strconv.Atoi(link)
		if err != nil {
			return setupErr("find the app's host PID: /proc/self is %q", link)
		}
		if err := proc.Record(a.AppPidFile, pid); err != nil {
			return setupErr("write %s: %w", a.AppPidFile, err)
		}
	}
	if netResolv && a.NetResolvConf != "" {
		a.ResolvConf = a.NetResolvConf
	}
	if err := finishRoot(a); err != nil {
		return err
	}
	if err := pivotRoot(a.Root); err != nil {
		return err
	}
	trace("pivoted")
	id, err := ResolveIdentity(a.User, a.Group)
	if err != nil {
		return setupErr("%w", err)
	}
	if tty != nil {
		if err := tty.attach(id); err != nil {
			return err
		}
	}
	env := systemdEnv(completeEnv(a.Env, id), a)
	if len(a.Exec) == 0 {
		return setupErr("nothing to execute: give an exec in the image manifest or with --exec")
	}
	path, err := lookPath(a.Exec[0], env)
	if err != nil {
		return err
	}
	if err := checkExecutable(path); err != nil {
		return err
	}
	wd := a.WorkingDir
	if wd == "" {
		wd = "/"
	}
	p := privileges{caps: a.Capabilities, id: id, groups: a.SupplementaryGIDs, noNewPrivs: a.NoNewPrivs, filter: filter}
	p.listenFds = a.ListenFds
	return p.exec(ctx, wd, path, a.Exec, env, trace)
}

// privileges are what an app's processes run with: the app's and, with
// rkt enter, the commands entered into it.
type privileges struct {
	caps       []int // bounding set (nil: every capability)
	id         Identity
	groups     []int // supplementary groups
	noNewPrivs bool  // also set for every user but root
	filter     []bpf.RawInstruction
	// listenFds: the descriptors 3.. of socket activation stay open.
	listenFds int
}

// exec drops to p on the calling thread, enters wd and execs path. It
// returns only on failure. The caller holds the thread (LockOSThread).
func (p privileges) exec(ctx context.Context, wd, path string, argv, env []string, trace func(string)) error {
	if err := dropBoundingSet(p.caps); err != nil {
		return err
	}
	if err := clearInheritable(); err != nil {
		return err
	}
	if err := switchUser(p.id, p.groups); err != nil {
		return err
	}
	// A change of user makes the process dumpable again where
	// fs.suid_dumpable is 1: it must stay out of reach of the app's
	// processes (ptrace, /proc/PID/exe) until the exec.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err := os.Chdir(wd); err != nil {
		return setupErr("enter working directory %s: %w", wd, err)
	}
	// Nothing but stdio (and the sockets of socket activation, fds.Passed)
	// reaches the app, whatever the chain from rkt's caller left open;
	// before the seccomp filter, which may not allow close_range.
	if err := fds.CloseOnExecFrom(3, fds.Passed(p.listenFds)...); err != nil {
		return setupErr("keep inherited descriptors from the app: %w", err)
	}
	if p.noNewPrivs || p.id.UID != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return setupErr("set no_new_privs: %w", err)
		}
	}
	if p.filter != nil {
		if err := seccomp.Load(p.filter); err != nil {
			return setupErr("%w", err)
		}
	}
	trace("exec")
	if err := ctx.Err(); err != nil {
		return setupErr("%w", err)
	}
	err := syscall.Exec(path, argv, env)
	return explainExec(path, err)
}

// assemble compiles the filter (nil for none).
func (s *Seccomp) assemble() ([]bpf.RawInstruction, error) {
	if s == nil {
		return nil, nil
	}
	f := seccomp.Filter{
		Retain: s.Retain, Syscalls: s.Syscalls,
		Errno: syscall.Errno(s.Errno), BlockNamespaceClone: s.BlockNamespaceClone,
	}
	filter, err := f.Assemble()
	if err != nil {
		return nil, setupErr("%w", err)
	}
	return filter, nil
}

// setOOMScoreAdj writes adj, if set, to /proc/self/oom_score_adj.
func setOOMScoreAdj(adj *int) error {
	if adj == nil {
		return nil
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*adj)), 0o644); err != nil {
		return setupErr("set oom_score_adj to %d: %w", *adj, err)
	}
	return nil
}

// joinCgroups moves this process into the cgroup directories dirs. It
// must run on the thread that execs the app (Launch's). In a cgroup v1
// hierarchy it moves just this thread, by writing 0 to the directory's
// tasks file: the kernel then skips the lock that moving a whole process
// takes, which waits for an RCU grace period (several ms, more on a busy
// host) on the first migration after a quiet moment; the app, exec'd
// from this thread, is then all in the cgroup (exec ends the other
// threads). A cgroup v2 directory (the supervisor could not start the
// launcher right in it) has no tasks file: the whole process moves, in
// the background, overlapping with the mounts. The files are opened
// now, before the mounts change what paths mean.
func joinCgroups(dirs []string) <-chan error {
	done := make(chan error, 1)
	var procs []*os.File
	var procDirs []string
	fail := func(err error) <-chan error {
		for _, f := range procs {
			f.Close()
		}
		done <- err
		return done
	}
	for _, d := range dirs {
		f, err := os.OpenFile(filepath.Join(d, "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = f.WriteString("0")
			f.Close()
			if err != nil {
				return fail(setupErr("join cgroup %s: %w", d, err))
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fail(setupErr("join cgroup %s: %w", d, err))
		}
		if f, err = os.OpenFile(filepath.Join(d, "cgroup.procs"), os.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
			return fail(setupErr("join cgroup %s: %w", d, err))
		}
		procs, procDirs = append(procs, f), append(procDirs, d)
	}
	go func() {
		var first error
		for i, f := range procs {
			if _, err := f.WriteString("0"); err != nil && first == nil {
				first = setupErr("join cgroup %s: %w", procDirs[i], err)
			}
			f.Close()
		}
		done <- first
	}()
	return done
}

// switchUser sets the groups, gid and uid (for every thread).
func switchUser(id Identity, extra []int) error {
	groups := append([]int{}, extra...)
	if err := syscall.Setgroups(groups); err != nil {
		return setupErr("set supplementary groups %v: %w", groups, err)
	}
	if err := syscall.Setgid(id.GID); err != nil {
		return setupErr("set gid %d: %w", id.GID, err)
	}
	if err := syscall.Setuid(id.UID); err != nil {
		return setupErr("set uid %d: %w", id.UID, err)
	}
	return nil
}

// systemdEnv sets the variables of systemd's protocols the app is given
// (socket activation, the watchdog), whose pids are the app's own: this
// process's, which execs the app, in the pod's PID namespace.
func systemdEnv(env []string, a *App) []string {
	set := map[string]string{}
	pid := strconv.Itoa(os.Getpid())
	if a.ListenFds > 0 {
		set["LISTEN_FDS"] = strconv.Itoa(a.ListenFds)
		set["LISTEN_PID"] = pid
		if a.ListenFdNames != "" {
			set["LISTEN_FDNAMES"] = a.ListenFdNames
		}
	}
	if a.WatchdogUsec != "" {
		set["WATCHDOG_USEC"] = a.WatchdogUsec
		set["WATCHDOG_PID"] = pid
	}
	if len(set) == 0 {
		return env
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if v, ok := set[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// completeEnv adds HOME, USER and LOGNAME from the resolved user when the
// app's environment lacks them.
func completeEnv(env []string, id Identity) []string {
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	out := append([]string(nil), env...)
	home := id.Home
	if home == "" {
		home = "/"
		if id.UID == 0 {
			home = "/root"
		}
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	if id.Name != "" {
		if !has("USER") {
			out = append(out, "USER="+id.Name)
		}
		if !has("LOGNAME") {
			out = append(out, "LOGNAME="+id.Name)
		}
	}
	return out
}

// Report writes a launcher failure to w (the status pipe to the
// supervisor) and returns the exit code the launcher should exit with.
func Report(w *os.File, app string, err error) int {
	code := ExitSetupFailed
	var se *SetupError
	if errors.As(err, &se) {
		code = se.Code
	}
	msg := fmt.Sprintf("%d %s\n", code, err)
	if w != nil {
		if _, werr := w.WriteString(msg); werr == nil {
			return code
		}
	}
	fmt.Fprintf(os.Stderr, "stage2: app %s: %v\n", app, err)
	return code
}

// ErrNotStarted is the error of a launcher whose pod did not start (its
// configuration stream ended without the start line): it exits quietly.
var ErrNotStarted = errors.New("the pod did not start")

// Main is the launcher's entry point: it reads the App (JSON, one line)
// from cfg, mounts the app's root, waits on cfg for the start line
// ("start" or "start resolv") and launches. extraCgroups are cgroups to
// join besides the App's (the supervisor could not start the launcher
// right in them). listenFds is the number of sockets of socket activation
// the launcher has as descriptors 3.. for the app. termFd is the terminal socket, used (and only then
// opened) when the App asks for a terminal. It returns only on failure,
// with the exit code after reporting the error on status.
func Main(ctx context.Context, cfg, status *os.File, termFd, listenFds int, extraCgroups []string) int {
	var a App
	r := bufio.NewReader(cfg)
	line, err := r.ReadBytes('\n')
	if err == nil || (err == io.EOF && len(line) > 0) {
		err = json.Unmarshal(line, &a)
	}
	if err != nil {
		cfg.Close()
		return Report(status, "?", setupErr("read the app's configuration from the supervisor: %w", err))
	}
	a.CgroupDirs = append(a.CgroupDirs, extraCgroups...)
	a.ListenFds = listenFds
	// The status pipe must close when the app is exec'd: its EOF is the
	// supervisor's "started" signal.
	unix.CloseOnExec(int(status.Fd()))
	start := func() (bool, error) {
		line, _ := r.ReadString('\n')
		cfg.Close()
		switch strings.TrimSuffix(line, "\n") {
		case "start":
			return false, nil
		case "start resolv":
			return true, nil
		}
		return false, ErrNotStarted
	}
	var term *os.File
	if a.Terminal {
		unix.CloseOnExec(termFd)
		term = os.NewFile(uintptr(termFd), "terminal")
	}
	err = launch(ctx, &a, term, start)
	if errors.Is(err, ErrNotStarted) {
		return ExitSetupFailed
	}
	return Report(status, a.Name, err)
}
