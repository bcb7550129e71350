// Package enter is the stage1 enter entrypoint, shared by the default and
// fly flavors: it runs a command in the namespaces and root of a running
// app.
//
// Go cannot setns(2) into a mount namespace from a multi-threaded process,
// so the command is not put in the app's mount namespace: this process
// joins the app's IPC, UTS, network and PID namespaces on one locked OS
// thread (setns affects only that thread, and the PID namespace only its
// children), then starts the command from that thread chrooted into
// /proc/<app pid>/root, which is the app's root as its mount namespace
// sees it, mounts included. The command joins the app's cgroups and gets
// the app's environment (stage1/rootfs/rkt/env/<app>). It runs as root
// with this process's capabilities, without the app's seccomp filter.
package enter

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/stage1/podcfg"
)

// Main runs `enter --pid=PID --appname=NAME -- CMD [ARGS...]` and returns
// the command's exit code (254 when it cannot be started).
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("enter", flag.ContinueOnError)
	pid := fs.Int("pid", 0, "host PID of the app's first process")
	app := fs.String("appname", "", "the app's name")
	if err := fs.Parse(args); err != nil {
		return 254
	}
	cmd := fs.Args()
	if *pid <= 0 || len(cmd) == 0 {
		fmt.Fprintln(os.Stderr, "stage1 enter: usage: enter --pid=PID --appname=NAME -- CMD [ARGS...]")
		return 254
	}
	code, err := Enter(ctx, *pid, *app, cmd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 enter: %v\n", err)
		return 254
	}
	return code
}

// Enter runs cmd in the app whose first process is pid and returns its
// exit code. The pod directory is the working directory (for the app's
// environment file); without one the environment is a default PATH.
func Enter(ctx context.Context, pid int, app string, cmd []string) (int, error) {
	// What `rkt enter`'s caller left open without close-on-exec stays
	// out of the app.
	if err := fds.CloseOnExecFrom(3, fds.Passed...); err != nil {
		return 0, fmt.Errorf("keep the caller's descriptors from the app: %w", err)
	}
	env := appEnv(app)
	root := fmt.Sprintf("/proc/%d/root", pid)
	if _, err := os.Stat(root); err != nil {
		return 0, fmt.Errorf("app %s (pid %d) is not running: %w", app, pid, err)
	}
	exe, err := podcfg.LookIn(root, cmd[0], env)
	if err != nil {
		return 0, err
	}
	// Namespaces are per thread: this goroutine stays on its thread, which
	// dies with the process.
	runtime.LockOSThread()
	for _, ns := range []string{"ipc", "uts", "net", "pid"} {
		if err := setns(pid, ns); err != nil {
			return 0, err
		}
	}
	c := exec.CommandContext(ctx, exe, cmd[1:]...)
	c.Args[0] = cmd[0]
	c.Env = env
	c.Dir = "/"
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	// Join the app's cgroups before starting the command, so that it (and
	// anything it forks) is never outside them; this short-lived process
	// is charged to the app as well, which is where it runs.
	joinCgroups(pid, os.Getpid())
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
	err = c.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// setns joins pid's namespace ns on the calling thread.
func setns(pid int, ns string) error {
	p := fmt.Sprintf("/proc/%d/ns/%s", pid, ns)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the app's %s namespace: %w", ns, err)
	}
	defer unix.Close(fd)
	self := fmt.Sprintf("/proc/thread-self/ns/%s", ns)
	if same(p, self) {
		return nil // e.g. --net=host
	}
	if err := unix.Setns(fd, 0); err != nil {
		return fmt.Errorf("join the app's %s namespace: %w", ns, err)
	}
	return nil
}

func same(a, b string) bool {
	x, err1 := os.Readlink(a)
	y, err2 := os.Readlink(b)
	return err1 == nil && err2 == nil && x == y
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

// joinCgroups moves process proc into the cgroups of the app's process pid (best
// effort: the command runs either way).
func joinCgroups(pid, proc int) {
	hs, err := cgroup.Self()
	if err != nil {
		return
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, h := range hs {
			match := (parts[1] == "" && h.Unified) || (!h.Unified && parts[1] == strings.Join(h.Controllers, ","))
			if match {
				os.WriteFile(filepath.Join(h.Dir(parts[2]), "cgroup.procs"), []byte(strconv.Itoa(proc)), 0o644)
			}
		}
	}
}
