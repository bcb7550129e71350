// Command launcher is the default flavor's stage2 launcher, /stage2 in
// the stage1 image: the supervisor runs it once per app, in a new mount
// namespace, as `rkt-stage2 [CGROUP]` with the app's configuration on
// fd 3, a status pipe on fd 4 and, for an interactive app, the terminal
// socket on fd 5 (see stage1/supervisor); it mounts the
// app's root, waits for the start line and execs the app (package
// stage2). It is a binary of its own so that it starts fast and holds
// none of the host-side code.
package main

import (
	"context"
	"os"
	"runtime"

	"github.com/rkt/rkt/stage1/supervisor"
	"github.com/rkt/rkt/stage2"
)

func main() {
	if len(os.Args) < 1 || os.Args[0] != supervisor.LauncherArgvName {
		os.Stderr.WriteString("stage2: this is the pod supervisor's app launcher, not a command\n")
		os.Exit(254)
	}
	// Bounding set, no_new_privs and seccomp are per thread: the launcher
	// sets them on this thread and execs the app from it.
	runtime.LockOSThread()
	cfg := os.NewFile(supervisor.LaunchConfigFd, "config")
	status := os.NewFile(supervisor.LaunchStatusFd, "status")
	os.Exit(stage2.Main(context.Background(), cfg, status, supervisor.LaunchTerminalFd, os.Args[1:]))
}
