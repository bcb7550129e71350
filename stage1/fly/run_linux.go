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
	"syscall"

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
	if err := fds.CloseOnExecFrom(3, fds.Passed...); err != nil {
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
	if err := os.WriteFile(filepath.Join(pod.Dir, podcfg.AppEnv(a.Name)), []byte(env), 0o644); err != nil {
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

// runApp starts the app chrooted, forwards signals, records its status
// and returns its exit code.
func runApp(ctx context.Context, pod *podcfg.Pod, a *stage2.App, interactive bool, opts *podcfg.Options) (int, error) {
	id, err := stage2.ResolveIdentityIn(a.Root, a.User, a.Group)
	if err != nil {
		return 0, fmt.Errorf("app %s: %w", a.Name, err)
	}
	exe, err := podcfg.LookIn(a.Root, a.Exec[0], a.Env)
	if err != nil {
		return 127, reportExit(pod, a, 127, err)
	}
	env := append([]string(nil), a.Env...)
	if id.Home != "" {
		env = append(env, "HOME="+id.Home)
	}
	c := exec.Command(exe, a.Exec[1:]...)
	c.Path = exe // inside the chroot, not looked up on the host
	c.Args[0] = a.Exec[0]
	c.Env = env
	c.Dir = a.WorkingDir
	if c.Dir == "" {
		c.Dir = "/"
	}
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	var logs *appLogs
	if interactive {
		c.Stdin = os.Stdin
	} else {
		// Its output goes through pipes read here, to its log file and
		// the journal or rkt's stdout and stderr (docs/systemd.md).
		logs, err = newAppLogs(pod, a.Name, opts)
		if err != nil {
			return 0, err
		}
		// A closed stdout or stderr must not kill this process, which
		// copies the app's output there: writes fail with EPIPE (Notify,
		// not Ignore, which the app would inherit).
		signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
		defer logs.finish()
		c.Stdout, c.Stderr = logs.stdoutW, logs.stderrW
	}
	groups := make([]uint32, len(a.SupplementaryGIDs))
	for i, g := range a.SupplementaryGIDs {
		groups[i] = uint32(g)
	}
	c.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     a.Root,
		Credential: &syscall.Credential{Uid: uint32(id.UID), Gid: uint32(id.GID), Groups: groups},
		Setsid:     !interactive,
		// The app goes with the pod's process, as in the default flavor.
		Pdeathsig: syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if interactive {
		signal.Ignore(unix.SIGINT)
	}
	if err := c.Start(); err != nil {
		code := 126
		if errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return code, reportExit(pod, a, code, fmt.Errorf("app %s: start %s: %w", a.Name, exe, err))
	}
	logs.started()
	proc.Record(filepath.Join(pod.Dir, podcfg.AppPid(a.Name)), c.Process.Pid)
	if f, err := os.Create(filepath.Join(pod.Dir, podcfg.AppStarted(a.Name))); err == nil {
		f.Close()
	}
	os.Symlink("ready", filepath.Join(pod.Dir, podcfg.SupervisorStatus))
	sdNotify("READY=1")
	go func() {
		for s := range sigs {
			c.Process.Signal(s)
		}
	}()
	err = c.Wait()
	logs.finish()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		return 0, err
	}
	return code, reportExit(pod, a, code, nil)
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
