package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/stage1/gc"
	"github.com/rkt/rkt/stage1/podcfg"
	"github.com/rkt/rkt/stage2"
)

// runMain is the fly run entrypoint; it returns the exit code.
func runMain(ctx context.Context, args []string) int {
	opts, err := podcfg.ParseRunArgs(args, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1-fly: %v\n", err)
		return 254
	}
	code, err := flyRun(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1-fly: %v\n", err)
		return 254
	}
	return code
}

func flyRun(ctx context.Context, opts *podcfg.Options) (int, error) {
	if !opts.NetHost() {
		return 0, fmt.Errorf("--net=%s: the fly flavor runs in the host's network namespace: use --net=host", opts.Net)
	}
	// The locks stage0 handed over stay with this process, not the app,
	// and so does whatever rkt's caller left open without close-on-exec.
	if err := fds.CloseOnExecFrom(3); err != nil {
		return 0, fmt.Errorf("keep the caller's descriptors from the app: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	// The host's files, not generated ones: the app shares the host's
	// network and UTS namespaces.
	if opts.ResolvMode == "default" {
		opts.ResolvMode = "host"
	}
	if opts.HostsMode == "default" {
		opts.HostsMode = "host"
	}
	pod, err := podcfg.Load(ctx, wd, opts)
	if err != nil {
		return 0, err
	}
	if len(pod.Apps) != 1 {
		return 0, fmt.Errorf("the fly flavor runs exactly one app; this pod has %d", len(pod.Apps))
	}
	a := &pod.Apps[0].Launch
	for _, d := range []string{podcfg.StatusDir, podcfg.AppPidDir, podcfg.EnvDir, podcfg.AppRoot(a.Name), podcfg.AppUpper(a.Name), podcfg.AppWork(a.Name)} {
		if err := os.MkdirAll(filepath.Join(pod.Dir, d), 0o755); err != nil {
			return 0, err
		}
	}
	empties := append(append([]podcfg.EmptyVolume(nil), pod.EmptyVolumes...), pod.Apps[0].InlineVolumes...)
	for _, ev := range empties {
		if err := makeEmptyVolume(ev); err != nil {
			return 0, err
		}
	}
	env := strings.Join(a.Env, "\x00") + "\x00"
	if err := os.WriteFile(filepath.Join(pod.Dir, podcfg.AppEnv(a.Name)), []byte(env), 0o600); err != nil {
		return 0, err
	}
	if err := proc.Record(filepath.Join(pod.Dir, podcfg.PidFile), os.Getpid()); err != nil {
		return 0, fmt.Errorf("record the pod's pid: %w", err)
	}
	// Whatever happens, take the app's mounts down when we are done.
	defer gc.Unmount(filepath.Join(pod.Dir, podcfg.Stage1RootfsDir), func(string, ...any) {})
	if err := mountRoot(a); err != nil {
		return 0, err
	}
	return runApp(ctx, pod, a, opts.Interactive, opts)
}

// mountRoot mounts the app's overlay root with the host's /dev, /proc and
// /sys, the volumes and the DNS files.
func mountRoot(a *stage2.App) error {
	low := strings.Join(a.LowerDirs, ":")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", low, a.UpperDir, a.WorkDir)
	if err := unix.Mount("overlay", a.Root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount the app's root on %s (%s): %w", a.Root, opts, err)
	}
	binds := []stage2.Mount{
		{Volume: "dev", Source: "/dev", Target: "/dev", Recursive: true},
		{Volume: "proc", Source: "/proc", Target: "/proc", Recursive: true},
		{Volume: "sys", Source: "/sys", Target: "/sys", Recursive: true},
	}
	if a.HostsFile != "" {
		binds = append(binds, stage2.Mount{Volume: "hosts", Source: a.HostsFile, Target: "/etc/hosts", ReadOnly: true})
	}
	if a.ResolvConf != "" {
		binds = append(binds, stage2.Mount{Volume: "resolv.conf", Source: a.ResolvConf, Target: "/etc/resolv.conf", ReadOnly: true})
	}
	binds = append(binds, a.Mounts...)
	for _, m := range binds {
		if err := bind(a.Root, m); err != nil {
			return fmt.Errorf("volume %s: %w", m.Volume, err)
		}
	}
	return nil
}

// bind binds m.Source on m.Target inside root.
func bind(root string, m stage2.Mount) error {
	fi, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	t, err := securejoin.SecureJoin(root, m.Target)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.MkdirAll(t, 0o755)
	} else if _, serr := os.Lstat(t); serr != nil {
		if err = os.MkdirAll(filepath.Dir(t), 0o755); err == nil {
			var f *os.File
			if f, err = os.Create(t); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", m.Target, err)
	}
	flags := uintptr(unix.MS_BIND)
	if m.Recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(m.Source, t, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// makeEmptyVolume creates an empty volume's backing directory.
func makeEmptyVolume(ev podcfg.EmptyVolume) error {
	if err := os.MkdirAll(ev.Path, 0o700); err != nil {
		return fmt.Errorf("volume %s: %w", ev.Name, err)
	}
	if err := os.Lchown(ev.Path, ev.UID, ev.GID); err != nil {
		return fmt.Errorf("volume %s: %w", ev.Name, err)
	}
	return os.Chmod(ev.Path, ev.Mode)
}

// runApp runs the app chrooted, between its pre-start and post-stop
// event handlers (run the same way: chrooted, as the app's user, with its
// environment and working directory), forwards signals to whichever
// runs, records the app's status and returns its exit code. A failing
// pre-start handler fails the app (254, the app does not run); a failing
// post-stop handler makes the exit code 254 if the app succeeded.
func runApp(ctx context.Context, pod *podcfg.Pod, a *stage2.App, interactive bool, opts *podcfg.Options) (int, error) {
	id, err := stage2.ResolveIdentityIn(a.Root, a.User, a.Group)
	if err != nil {
		return 0, fmt.Errorf("app %s: %w", a.Name, err)
	}
	env := append([]string(nil), a.Env...)
	if id.Home != "" {
		env = append(env, "HOME="+id.Home)
	}
	r := &runner{a: a, id: id, env: env, interactive: interactive, timeout: pod.HandlerTimeout}
	if !interactive {
		// The output of the app and its handlers goes through pipes
		// read here, to the app's log file and the journal or rkt's
		// stdout and stderr (docs/systemd.md).
		logs, err := newAppLogs(pod, a.Name, opts)
		if err != nil {
			return 0, err
		}
		defer logs.finish()
		// A closed stdout or stderr must not kill this process, which
		// copies the app's output there: writes fail with EPIPE (Notify,
		// not Ignore, which the app would inherit).
		signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
		r.stdout, r.stderr = logs.stdoutW, logs.stderrW
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if interactive {
		signal.Ignore(unix.SIGINT)
	}
	go func() {
		for s := range sigs {
			r.signal(s)
		}
	}()
	handlers := pod.Apps[0]
	if h := handlers.PreStart; h != nil {
		if err := r.handler(ctx, "pre-start", h); err != nil {
			return 254, reportExit(pod, a, 254, fmt.Errorf("%w: the app is not started (exit status 254)", err))
		}
		if sig := r.stopped(); sig != 0 {
			return 128 + int(sig), reportExit(pod, a, 128+int(sig), nil)
		}
	}
	exe, err := podcfg.LookIn(a.Root, a.Exec[0], a.Env)
	if err != nil {
		return 127, reportExit(pod, a, 127, err)
	}
	c := r.command(exe, a.Exec)
	// The app goes with the pod's process, as in the default flavor.
	c.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := r.start(c); err != nil {
		code := 126
		if errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return code, reportExit(pod, a, code, fmt.Errorf("app %s: start %s: %w", a.Name, exe, err))
	}
	proc.Record(filepath.Join(pod.Dir, podcfg.AppPid(a.Name)), c.Process.Pid)
	if f, err := os.Create(filepath.Join(pod.Dir, podcfg.AppStarted(a.Name))); err == nil {
		f.Close()
	}
	os.Symlink("ready", filepath.Join(pod.Dir, podcfg.SupervisorStatus))
	sdNotify("READY=1")
	code, err := r.wait(c)
	if err != nil {
		return 0, err
	}
	if err := reportExit(pod, a, code, nil); err != nil {
		return code, err
	}
	if h := handlers.PostStop; h != nil {
		if err := r.handler(ctx, "post-stop", h); err != nil {
			fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
			if code == 0 {
				code = 254
			}
		}
	}
	return code, nil
}

// runner runs the app's processes one after the other and passes the
// signals rkt gets on to the one that runs.
type runner struct {
	a           *stage2.App
	id          stage2.Identity
	env         []string
	interactive bool
	timeout     time.Duration
	// stdout, stderr: where the app's processes write (nil: rkt's own).
	stdout, stderr *os.File

	mu   sync.Mutex
	cur  *os.Process
	stop os.Signal // the first stop signal, if any
}

// command is exe (in the app's root) with argv, as the app runs.
func (r *runner) command(exe string, argv []string) *exec.Cmd {
	c := exec.Command(exe, argv[1:]...)
	c.Path = exe // inside the chroot, not looked up on the host
	c.Args[0] = argv[0]
	c.Env = r.env
	c.Dir = r.a.WorkingDir
	if c.Dir == "" {
		c.Dir = "/"
	}
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if r.stdout != nil {
		c.Stdout, c.Stderr = r.stdout, r.stderr
	}
	if r.interactive {
		c.Stdin = os.Stdin
	}
	groups := make([]uint32, len(r.a.SupplementaryGIDs))
	for i, g := range r.a.SupplementaryGIDs {
		groups[i] = uint32(g)
	}
	c.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     r.a.Root,
		Credential: &syscall.Credential{Uid: uint32(r.id.UID), Gid: uint32(r.id.GID), Groups: groups},
		Setsid:     !r.interactive,
	}
	return c
}

func (r *runner) start(c *exec.Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := c.Start(); err != nil {
		return err
	}
	r.cur = c.Process
	return nil
}

// wait waits for c and returns its exit code (128+N if killed by signal
// N).
func (r *runner) wait(c *exec.Cmd) (int, error) {
	err := c.Wait()
	r.mu.Lock()
	r.cur = nil
	r.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

func (r *runner) signal(s os.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop == nil {
		r.stop = s
	}
	if r.cur != nil {
		r.cur.Signal(s)
	}
}

// stopped returns the signal rkt was stopped with (0 if none).
func (r *runner) stopped() syscall.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.stop.(syscall.Signal); ok {
		return s
	}
	return 0
}

// handler runs the app's event handler name (argv) to its end, killing
// it (with its session, when it has one) after the timeout; it returns
// why it failed.
func (r *runner) handler(ctx context.Context, name string, argv []string) error {
	what := fmt.Sprintf("app %s: %s event handler %q", r.a.Name, name, argv)
	exe, err := podcfg.LookIn(r.a.Root, argv[0], r.a.Env)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	c := r.command(exe, argv)
	c.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := r.start(c); err != nil {
		return fmt.Errorf("%s: start %s: %w", what, exe, err)
	}
	timedOut := make(chan bool, 1)
	t := time.AfterFunc(r.timeout, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.cur != c.Process {
			return // it has exited
		}
		timedOut <- true
		if c.SysProcAttr.Setsid {
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
		c.Process.Kill()
	})
	code, err := r.wait(c)
	t.Stop()
	switch {
	case len(timedOut) > 0:
		return fmt.Errorf("%s did not finish within %v: killed (the pod annotation %s sets the timeout)", what, r.timeout, podcfg.HandlerTimeoutAnnotation)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case code != 0:
		return fmt.Errorf("%s failed with exit status %d", what, code)
	}
	return ctx.Err()
}

// reportExit writes the app's status file; a non-nil cause is printed.
func reportExit(pod *podcfg.Pod, a *stage2.App, code int, cause error) error {
	if cause != nil {
		fmt.Fprintf(os.Stderr, "rkt: %v\n", cause)
	}
	return exitstatus.Write(filepath.Join(pod.Dir, podcfg.AppStatus(a.Name)), code, "")
}

// sdNotify sends state to $NOTIFY_SOCKET, if set.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	unix.Sendto(fd, []byte(state), 0, &unix.SockaddrUnix{Name: addr})
}
