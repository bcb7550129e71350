// Command stage1 is the default flavor's only binary. The stage1 image
// holds it as /init with /enter, /gc and /stop linked to it; what it does
// depends on the name it is run as (the base name of argv[0]):
//
//	init            the run entrypoint (stage1/run)
//	enter           run a command in an app (stage1/enter)
//	gc              clean up after an exited pod (stage1/gc)
//	stop            stop a running pod (stage1/stop)
//	rkt-supervisor  the pod's process 1 (stage1/supervisor), internal
//	rkt-stage2      one app's launcher (stage2), internal
//
// The two internal modes are re-execs of this binary. The re-exec
// protocol, in the order things happen on `rkt run` (each arrow is a
// message; "EOF" is the end of a pipe):
//
//	stage0 (rkt run)
//	  │ exec <stage1 rootfs>/init [flags] UUID   (cwd: pod dir,
//	  │      RKT_LOCK_FD, RKT_TREE_LOCK_FDS held for the pod's lifetime)
//	  ▼
//	init (host namespaces, caller's cgroup → <pod cgroup>/stage1)
//	  │ opens its own executable (fd 5)
//	  │ clone(NEWPID|NEWNS|NEWUTS|NEWIPC[|NEWNET unless --net=host])
//	  │      + exec /proc/self/fd/5, argv[0]=rkt-supervisor, Setsid unless
//	  │      --interactive, Pdeathsig=SIGKILL; fds 0-2 stdio, 3 config,
//	  │      4 events, 5 stage1 binary
//	  │ writes <pod>/pid (the supervisor's host PID)
//	  │ CNI networks (--net=default, ...): networking.Setup in
//	  │      /proc/<pid>/ns/net while the supervisor waits on fd 3; on
//	  │      failure SIGKILL it, undo cgroups, exit 254
//	  ├──── fd 3: supervisor.Config (JSON), EOF ─────────────────────▶ supervisor
//	  │                                                                 (pid 1)
//	  │                         per app: clone(NEWNS) + exec /proc/self/exe
//	  │                         argv[0]=rkt-stage2; fds 0 /dev/null or tty,
//	  │                         1-2 stdio, 3 config, 4 status
//	  │                           ├── fd 3: stage2.App (JSON), EOF ──▶ launcher
//	  │                           │                                     joins cgroups,
//	  │                           │                                     mounts, pivots,
//	  │                           │                                     drops privileges
//	  │                           │◀── fd 4: "<code> <message>\n" ───── on failure, exit code
//	  │                           │◀── fd 4: EOF (CLOEXEC) ──────────── exec of the app
//	  │◀──── fd 4: "ready\n" ─────┤ once every app runs (and said READY=1
//	  │ sd_notify READY=1           if its image supports notify)
//	  │ SIGTERM/SIGINT/SIGHUP ───▶│ forwarded to the apps; SIGKILL to
//	  │                           │ all after the grace period
//	  │◀──── exit status ─────────┘ first failing app's code, else 0
//	  │ networking.Teardown (CNI DEL) of the pod's networks, if any
//	  ▼
//	exit with the supervisor's status (128+N if it was killed by signal N)
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/rkt/rkt/stage1/enter"
	"github.com/rkt/rkt/stage1/gc"
	"github.com/rkt/rkt/stage1/run"
	"github.com/rkt/rkt/stage1/stop"
	"github.com/rkt/rkt/stage1/supervisor"
	"github.com/rkt/rkt/stage2"
)

func main() {
	ctx := context.Background()
	args := os.Args[1:]
	switch name := filepath.Base(os.Args[0]); name {
	case "init":
		os.Exit(run.Main(ctx, args))
	case "enter":
		os.Exit(enter.Main(ctx, args))
	case "gc":
		os.Exit(gc.Main(ctx, args))
	case "stop":
		os.Exit(stop.Main(ctx, args))
	case supervisor.ArgvName:
		os.Exit(supervisor.Main(ctx))
	case supervisor.LauncherArgvName:
		// Bounding set, no_new_privs and seccomp are per thread: the
		// launcher sets them on this thread and execs the app from it.
		runtime.LockOSThread()
		os.Exit(stage2.Main(ctx, os.NewFile(supervisor.LaunchConfigFd, "config"), os.NewFile(supervisor.LaunchStatusFd, "status")))
	default:
		fmt.Fprintf(os.Stderr, "stage1: run as %q: this binary is run as init, enter, gc or stop (the stage1 image links those names to it)\n", name)
		os.Exit(254)
	}
}
