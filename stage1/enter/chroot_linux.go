package enter

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/stage1/podcfg"
)

// ChrootMain is the fly flavor's enter entrypoint, with Main's arguments.
// A fly app runs in the host's namespaces with the caller's privileges,
// so the command is only chrooted into the app's root (/proc/<app
// pid>/root, mounts included), in its cgroups, with the app's
// environment, as root, with
// the caller's capabilities and no seccomp filter: entering a fly pod
// grants what a fly app running as root has.
func ChrootMain(ctx context.Context, args []string) int {
	return parse(args, func(pid int, app string, cmd []string) (int, error) {
		return Chroot(ctx, pid, app, cmd)
	})
}

// Chroot runs cmd chrooted into the root of the app whose first process
// is pid and returns its exit code. The pod directory is the working
// directory (for the app's environment file); without one the
// environment is a default PATH.
func Chroot(ctx context.Context, pid int, app string, cmd []string) (int, error) {
	// What `rkt enter`'s caller left open without close-on-exec stays
	// out of the app.
	if err := fds.CloseOnExecFrom(3); err != nil {
		return 0, fmt.Errorf("keep the caller's descriptors from the app: %w", err)
	}
	env := appEnv(app)
	root := fmt.Sprintf("/proc/%d/root", pid)
	if _, err := os.Stat(root); err != nil {
		return 0, fmt.Errorf("app %s (pid %d) is not running: %w", app, pid, err)
	}
	appProc, err := recorded(podcfg.AppPid(app), "app "+app)
	if err != nil {
		return 0, err
	}
	if appProc.Pid != pid {
		return 0, fmt.Errorf("app %s: pid %d is not the app's process (stage1 recorded pid %d)", app, pid, appProc.Pid)
	}
	exe, err := podcfg.LookIn(root, cmd[0], env)
	if err != nil {
		return 0, err
	}
	c := exec.CommandContext(ctx, exe, cmd[1:]...)
	c.Args[0] = cmd[0]
	c.Env = env
	c.Dir = "/"
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	// Into the app's cgroups (the caller's of rkt run) before the command
	// starts, so that it and anything it forks is never outside them;
	// this short-lived process goes along (best effort, as for the app).
	if unified, v1, err := appCgroups(pid); err == nil {
		for _, d := range append(v1, unified) {
			if d != "" {
				cgroup.Join(d, 0)
			}
		}
	}
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start %s in app %s: %w", cmd[0], app, err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP)
	go func() {
		for s := range sigs {
			c.Process.Signal(s)
		}
	}()
	return exitCode(c.Wait())
}

// appEnv reads the app's environment file from the pod directory.
func appEnv(app string) []string {
	data, err := os.ReadFile(podcfg.AppEnv(app))
	if err != nil || app == "" {
		return []string{"PATH=" + podcfg.DefaultPath}
	}
	var env []string
	for _, kv := range strings.Split(string(data), "\x00") {
		if kv != "" {
			env = append(env, kv)
		}
	}
	return env
}
