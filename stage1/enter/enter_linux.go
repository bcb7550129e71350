// Package enter is the stage1 enter entrypoint: it runs a command in a
// running app.
//
// In the default flavor (Main) the command gets what the app has: its
// IPC, UTS, network, PID, cgroup and mount namespaces, its root, its
// cgroups, its environment, user, capability bounding set, no_new_privs
// and seccomp filter. This process runs from the stage1 image's tree on
// the host, which the pod must never reach (CVE-2019-5736), so it does
// not become the command: it joins the namespaces it can join from a
// multi-threaded Go process on one locked thread (setns affects that
// thread only, the PID namespace only its children) and from that thread
// starts the pod's launcher, through the read-only bind of it in the
// pod's mount namespace, which joins the app's mount namespace, drops
// the privileges and execs the command (the protocol is drawn in
// stage2's enter_linux.go).
//
// The fly flavor's apps share the host's namespaces and the caller's
// privileges; ChrootMain only chroots the command into the app's root
// (/proc/<app pid>/root).
package enter

import (
	"context"
	"encoding/json"
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
	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/stage1/host"
	"github.com/rkt/rkt/stage1/podcfg"
	"github.com/rkt/rkt/stage2"
)

// Main runs `enter --pid=PID --appname=NAME -- CMD [ARGS...]` (default
// flavor) and returns the command's exit code (254 when it cannot be
// started).
func Main(ctx context.Context, args []string) int {
	return parse(args, func(pid int, app string, cmd []string) (int, error) {
		return Enter(ctx, pid, app, cmd)
	})
}

// parse parses the entrypoint's arguments and calls run.
func parse(args []string, run func(pid int, app string, cmd []string) (int, error)) int {
	// Nothing in the pod may open this process's executable, the host's
	// stage1 binary, through /proc/PID/exe: it is in none of the pod's
	// PID namespace, and not dumpable either.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	fs := flag.NewFlagSet("enter", flag.ContinueOnError)
	pid := fs.Int("pid", 0, "host PID of the app's first process")
	app := fs.String("appname", "", "the app's name")
	if err := fs.Parse(args); err != nil {
		return 254
	}
	cmd := fs.Args()
	if *pid <= 0 || *app == "" || len(cmd) == 0 {
		fmt.Fprintln(os.Stderr, "stage1 enter: usage: enter --pid=PID --appname=NAME -- CMD [ARGS...]")
		return 254
	}
	code, err := run(*pid, *app, cmd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1 enter: %v\n", err)
		return 254
	}
	return code
}

// Enter runs cmd in the app whose first process is pid (default flavor)
// and returns its exit code. The pod directory is the working directory.
func Enter(ctx context.Context, pid int, app string, cmd []string) (int, error) {
	// What `rkt enter`'s caller left open without close-on-exec stays
	// out of the app.
	if err := fds.CloseOnExecFrom(3); err != nil {
		return 0, fmt.Errorf("keep the caller's descriptors from the app: %w", err)
	}
	cfg, err := readEnterConfig(app)
	if err != nil {
		return 0, err
	}
	cfg.Exec = cmd
	if err := checkApp(pid, app); err != nil {
		return 0, err
	}
	appProc, err := recorded(podcfg.AppPid(app), "app "+app)
	if err != nil {
		return 0, err
	}
	if appProc.Pid != pid {
		return 0, fmt.Errorf("app %s: pid %d is not the app's process (stage1 recorded pid %d)", app, pid, appProc.Pid)
	}
	sup, err := recorded(podcfg.PidFile, "the pod's process 1")
	if err != nil {
		return 0, err
	}
	launcher, err := openLauncher(sup.Pid)
	if err != nil {
		return 0, err
	}
	defer launcher.Close()
	nsfds := map[string]*os.File{}
	defer func() {
		for _, f := range nsfds {
			f.Close()
		}
	}()
	for _, ns := range []string{"ipc", "uts", "net", "cgroup", "pid", "mnt"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			if ns == "cgroup" && errors.Is(err, os.ErrNotExist) {
				continue // a kernel without cgroup namespaces
			}
			return 0, fmt.Errorf("app %s (pid %d): open its %s namespace: %w", app, pid, ns, err)
		}
		nsfds[ns] = f
	}
	unified, others, err := appCgroups(pid)
	if err != nil {
		return 0, fmt.Errorf("app %s (pid %d): %w", app, pid, err)
	}
	// Everything above was opened through /proc/PID: if both processes
	// are still the recorded ones, it was theirs (a pid is not reused
	// while its process lives).
	if err := check(appProc, "app "+app); err != nil {
		return 0, err
	}
	if err := check(sup, "the pod's process 1"); err != nil {
		return 0, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer cfgR.Close()
	defer cfgW.Close()

	// Namespaces are per thread: this goroutine stays on its thread, which
	// dies with the process, and starts the launcher from it.
	runtime.LockOSThread()
	for _, ns := range []string{"ipc", "uts", "net", "cgroup", "pid"} {
		if f := nsfds[ns]; f != nil {
			if err := setns(f, ns); err != nil {
				return 0, fmt.Errorf("app %s (pid %d): %w", app, pid, err)
			}
		}
	}
	newCmd := func() *exec.Cmd {
		c := exec.CommandContext(ctx, fmt.Sprintf("/proc/self/fd/%d", stage2.EnterExeFd))
		c.Args = []string{stage2.EnterArgvName}
		c.Env = []string{}
		c.Dir = "/"
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		// fds 3, 4, 5: stage2.EnterConfigFd, EnterMountNsFd, EnterExeFd.
		c.ExtraFiles = []*os.File{cfgR, nsfds["mnt"], launcher}
		// A session of its own: the caller's terminal, if any, is not
		// the command's controlling terminal, so it cannot push input
		// into it (TIOCSTI needs CAP_SYS_ADMIN then) for the caller's
		// shell to run once enter is over.
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return c
	}
	// The command is in a session of its own: the signals the terminal
	// sends to this process (^C, ^\) are for it too, as are SIGTERM and
	// SIGHUP.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT)
	c, err := start(newCmd, unified, &others)
	if err != nil {
		return 0, fmt.Errorf("app %s: start the pod's launcher: %w", app, err)
	}
	cfgR.Close()
	// The launcher waits for its configuration: it is in all the app's
	// cgroups before it execs the command.
	for _, d := range others {
		if err := cgroup.Join(d, c.Process.Pid); err != nil {
			c.Process.Kill()
			c.Wait()
			return 0, fmt.Errorf("app %s: %w", app, err)
		}
	}
	go func() {
		for s := range sigs {
			// To its process group, as a terminal sends them: a shell
			// entered without job control keeps its children in it.
			unix.Kill(-c.Process.Pid, s.(syscall.Signal))
		}
	}()
	data, err := json.Marshal(cfg)
	if err == nil {
		_, err = cfgW.Write(data)
	}
	cfgW.Close()
	if err != nil {
		c.Process.Kill()
		c.Wait()
		return 0, fmt.Errorf("app %s: send the launcher its configuration: %w", app, err)
	}
	return exitCode(c.Wait())
}

// start starts the command newCmd makes right in the cgroup v2 directory
// unified, if any (CLONE_INTO_CGROUP); where the kernel refuses, it
// starts it outside and adds unified to the directories the caller moves
// the process into.
func start(newCmd func() *exec.Cmd, unified string, others *[]string) (*exec.Cmd, error) {
	if unified != "" {
		if fd, err := unix.Open(unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			c := newCmd()
			c.SysProcAttr.UseCgroupFD, c.SysProcAttr.CgroupFD = true, fd
			err = c.Start()
			unix.Close(fd)
			if err == nil {
				return c, nil
			}
		}
		*others = append(*others, unified)
	}
	c := newCmd()
	return c, c.Start()
}

// exitCode turns the command's end into enter's exit code (128+N when
// killed by signal N).
func exitCode(err error) (int, error) {
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

// readEnterConfig reads what an entered command gets of app, which stage1
// wrote when the pod started.
func readEnterConfig(app string) (*stage2.EnterConfig, error) {
	data, err := os.ReadFile(podcfg.AppEnter(app))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("app %s: no %s in the pod directory: the pod has no such app, or was started by a stage1 that does not support enter (restart the pod)", app, podcfg.AppEnter(app))
	}
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	var cfg stage2.EnterConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("app %s: read %s: %w", app, podcfg.AppEnter(app), err)
	}
	return &cfg, nil
}

// checkApp makes sure that pid is a process of this pod (the working
// directory), in a mount namespace of its own: not a PID reused by some
// other process once the app exited, nor a process of the host's.
func checkApp(pid int, app string) error {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/root", pid)); err != nil {
		return fmt.Errorf("app %s (pid %d) is not running: %w", app, pid, err)
	}
	// stage0 reserves the status file at prepare time (empty until the
	// app exits): only a status in it says the app exited.
	if _, _, exited := exitstatus.Read(podcfg.AppStatus(app)); exited {
		return fmt.Errorf("app %s has exited", app)
	}
	data, err := os.ReadFile(podcfg.PidFile)
	if err != nil {
		return fmt.Errorf("read the pod's pid file: %w", err)
	}
	sup, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || sup <= 0 {
		return fmt.Errorf("the pod's pid file holds %q, not a PID", data)
	}
	ns := func(p, name string) string {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%s/ns/%s", p, name))
		return l
	}
	p, s := strconv.Itoa(pid), strconv.Itoa(sup)
	if ns(p, "pid") == "" || ns(p, "pid") != ns(s, "pid") {
		return fmt.Errorf("app %s: pid %d is not a process of this pod (it has exited?)", app, pid)
	}
	if mnt := ns(p, "mnt"); mnt == "" || mnt == ns(s, "mnt") || mnt == ns("self", "mnt") {
		return fmt.Errorf("app %s: pid %d has no mount namespace of its own (not an app's process?)", app, pid)
	}
	return nil
}

// recorded loads the process stage1 recorded in pidFile (with its start
// time: see pkg/proc) and checks that it still runs.
func recorded(pidFile, what string) (proc.Process, error) {
	p, err := proc.Load(pidFile)
	if err != nil {
		return p, fmt.Errorf("%s: %w", what, err)
	}
	return p, check(p, what)
}

// check checks that p still runs.
func check(p proc.Process, what string) error {
	if err := p.Check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// openLauncher opens the pod's launcher binary, /stage2 beside this
// binary, through the mount namespace of the supervisor sup (the pod's),
// where it is bound read-only: the launcher runs from that bind, so
// nothing in the pod can open it for writing. It refuses any other file.
func openLauncher(sup int) (*os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the stage1 image: %w", err)
	}
	path := filepath.Join(filepath.Dir(exe), host.LauncherBinary)
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/root%s", sup, path), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the pod's launcher %s: %w", path, err)
	}
	var sfs unix.Statfs_t
	var st, hst unix.Stat_t
	switch {
	case unix.Fstatfs(int(f.Fd()), &sfs) != nil || sfs.Flags&unix.ST_RDONLY == 0:
		err = fmt.Errorf("the pod's launcher %s is not on a read-only mount in the pod", path)
	case unix.Fstat(int(f.Fd()), &st) != nil || unix.Stat(path, &hst) != nil || st.Dev != hst.Dev || st.Ino != hst.Ino:
		err = fmt.Errorf("the pod's launcher %s is not the stage1 image's", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// setns joins namespace f (of type ns) on the calling thread, unless the
// thread is in it already (e.g. --net=host).
func setns(f *os.File, ns string) error {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat("/proc/thread-self/ns/"+ns, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
		return nil
	}
	if err := unix.Setns(int(f.Fd()), 0); err != nil {
		return fmt.Errorf("join its %s namespace: %w", ns, err)
	}
	return nil
}

// appCgroups returns the cgroups of the app's process pid: its cgroup v2
// directory, and the directories of the v1 hierarchies rkt sees.
func appCgroups(pid int) (unified string, v1 []string, err error) {
	hs, err := cgroup.Self()
	if err != nil {
		return "", nil, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", nil, fmt.Errorf("read its cgroups: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, h := range hs {
			switch {
			case parts[1] == "" && h.Unified:
				unified = h.Dir(parts[2])
			case !h.Unified && parts[1] == strings.Join(h.Controllers, ","):
				v1 = append(v1, h.Dir(parts[2]))
			}
		}
	}
	return unified, v1, nil
}
