// Command launcher is the default flavor's stage2 launcher, /stage2 in
// the stage1 image. The supervisor runs it once per app, in a new mount
// namespace, as `rkt-stage2 [CGROUP]` with the app's configuration on
// fd 3, a status pipe on fd 4 and, for an interactive app, the terminal
// socket on fd 5 (see stage1/supervisor); it mounts the
// app's root, waits for the start line and execs the app (package
// stage2). The enter entrypoint runs it as `rkt-stage2-enter` in the
// app's namespaces, with the configuration on fd 3 and the app's mount
// namespace on fd 4 (stage2.EnterMain): it runs the entered command with
// the app's privileges. It is a binary of its own so that it starts fast
// and holds none of the host-side code, and it runs from a read-only bind
// mount in the pod.
package main

import (
	"context"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage1/supervisor"
	"github.com/rkt/rkt/stage2"
)

func main() {
	// Bounding set, no_new_privs, seccomp and (for enter) the mount
	// namespace are per thread: the launcher sets them on this thread and
	// execs the app from it.
	runtime.LockOSThread()
	switch {
	case len(os.Args) == 1 && os.Args[0] == stage2.EnterArgvName:
		// Nothing in the pod may open this process's executable through
		// /proc/PID/exe while it has the host's privileges: it stays not
		// dumpable until the exec of the command.
		unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
		unix.Close(stage2.EnterExeFd)
		cfg := os.NewFile(stage2.EnterConfigFd, "config")
		mntns := os.NewFile(stage2.EnterMountNsFd, "mntns")
		unix.CloseOnExec(stage2.EnterMountNsFd)
		unix.CloseOnExec(stage2.EnterConfigFd)
		os.Exit(stage2.EnterMain(context.Background(), cfg, mntns))
	case len(os.Args) >= 1 && os.Args[0] == supervisor.LauncherArgvName:
		// The sockets of socket activation, if any, come first (3..),
		// where the app gets them; the launcher's own descriptors follow.
		n, _ := strconv.Atoi(os.Getenv(supervisor.LaunchListenFdsEnv))
		if n < 0 {
			n = 0
		}
		cfg := os.NewFile(uintptr(supervisor.LaunchConfigFd+n), "config")
		status := os.NewFile(uintptr(supervisor.LaunchStatusFd+n), "status")
		os.Exit(stage2.Main(context.Background(), cfg, status, supervisor.LaunchTerminalFd+n, n, os.Args[1:]))
	}
	os.Stderr.WriteString("stage2: this is the pod supervisor's app launcher, not a command\n")
	os.Exit(254)
}
