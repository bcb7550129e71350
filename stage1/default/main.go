// Command stage1 is the default flavor's big binary, /stage1 in the
// stage1 image, with /enter, /gc and /stop linked to it. What it does
// depends on the name it is run as (the base name of argv[0]):
//
//	enter        run a command in an app (stage1/enter)
//	gc           clean up after an exited pod (stage1/gc)
//	stop         stop a running pod (stage1/stop)
//	rkt-setup    the setup helper of a starting pod (stage1/run), internal
//	rkt-netdown  the network teardown of an exited pod (stage1/run), internal
//
// The run entrypoint, /init, is a small binary of its own
// (stage1/default/init): the pod's host-side process and its supervisor,
// the two processes that stay for the pod's whole life. The app launcher,
// /stage2, is a third (stage1/default/launcher). The run protocol, in
// the order things happen on `rkt run` (each arrow is a message; "EOF" is
// the end of a pipe):
//
//	stage0 (rkt run)
//	  │ exec <stage1 rootfs>/init [flags] UUID   (cwd: pod dir,
//	  │      RKT_LOCK_FD, RKT_TREE_LOCK_FDS held for the pod's lifetime)
//	  ▼
//	host-side process (/init: stage1/host; caller's PID and cgroup)
//	  │ marks every descriptor above 2 close-on-exec (the locks stay
//	  │      open here; nothing else inherited goes further)
//	  │ fork+exec /stage1 as rkt-setup EPOCH [flags] UUID; fds 3 config
//	  │      stream (to the supervisor), 4 control, 5 supervisor PID
//	  │
//	  │◀── fd 4: "clone net=1 ipc=1 interactive=0 debug=0\n" ── setup helper
//	  │                                              (reads the pod, writes
//	  │ clone(NEWPID|NEWNS|NEWUTS[|NEWIPC][|NEWNET])   its files; meanwhile:)
//	  │      + exec /proc/self/exe as rkt-supervisor /stage2 [interactive],
//	  │      Setsid, Pdeathsig=SIGKILL; fds 0-2 stdio (interactive:
//	  │      /dev/null and a pipe relayed to stderr), 3 the config stream,
//	  │      4 events, 5 (interactive) the terminal socket, 6 the log
//	  │      socket. The supervisor makes its mounts private and binds
//	  │      /stage2 read-only meanwhile
//	  ├──── fd 5: "<pid>\n" ──────────────────────────▶ setup helper:
//	  │                                                 pid file, app cgroups
//	  │                                                 with limits and the
//	  │                                                 device allowlist (and
//	  │                                                 a stage1 leaf in a unit)
//	  │                 supervisor ◀── fd 3: Config (lines), "end" ─┤
//	  │                  (pid 1)                                    │
//	  │◀── fd 6: per app "app NAME" + the read ends of its stdout   │
//	  │    and stderr pipes (SCM_RIGHTS; none if interactive), EOF; │
//	  │    the host-side process reads them (pkg/podlog: log files, │
//	  │    journal or its own stdout/stderr)                        │
//	  │   per app: clone(NEWNS), into the app's v2 cgroup, + exec   │ CNI
//	  │   /stage2 as rkt-stage2 [CGROUP], Setsid; fds 0 /dev/null,  │ networks
//	  │   1-2 the pipes' write ends (interactive: stdio), 3 config, │ in /proc/
//	  │   4 status, 5 terminal (interactive)                        │
//	  │     ├── fd 3: stage2.App (JSON line) ──▶ launcher: moves its │ <pid>/ns/net
//	  │     │   exec thread into the v1 cgroups, mounts the app's root│
//	  │◀─────── fd 5 (interactive): "pty" + the master of a pty   │
//	  │         of the app's devpts (SCM_RIGHTS); the host-side   │
//	  │         process sets its modes and window size, makes the │
//	  │         operator's terminal raw, relays it ─── "ok\n" ──▶ │
//	  │     │                                                       │
//	  │◀── fd 4: "netdown\n" (if networks were set up) ─────────────┤
//	  │                 supervisor ◀── fd 3: "start[ resolv]\n", EOF┘ exits 0
//	  │     ├── fd 3: "start[ resolv]\n", EOF ──▶ launcher: /etc/hosts,
//	  │     │                      resolv.conf, pivots, (interactive: waits
//	  │     │                      for "ok", the pty slave becomes fds 0-2
//	  │     │                      and the controlling terminal), drops
//	  │     │                      privileges, marks every fd above 2
//	  │     │                      close-on-exec
//	  │     │◀── fd 4: "<code> <message>\n" ── on failure, exit code
//	  │     │◀── fd 4: EOF (CLOEXEC) ───────── exec of the app
//	  │◀──── fd 4: "ready\n" ─────┤ once every app runs (and said READY=1
//	  │ sd_notify READY=1         │ if its image supports notify)
//	  │ SIGTERM/SIGINT/SIGHUP ───▶│ forwarded to the apps; SIGKILL to
//	  │   (also to the setup      │ all after the grace period
//	  │   helper while it runs)   │
//	  │◀──── fd 4: "exiting\n" ───┤ every app has exited
//	  │ after "netdown": fork+exec /stage1 as rkt-netdown EPOCH [flags]
//	  │      UUID, which reads the networks' configuration
//	  │◀──── exit status ─────────┘ first failing app's code, else 0
//	  │ closes the teardown helper's fd 3: CNI DEL of the pod's
//	  │      networks; waited for
//	  ▼
//	(interactive: the rest of the app's output relayed, the operator's
//	terminal modes restored)
//	exit with the supervisor's status (128+N if it was killed by signal N)
//
// Event handlers (the image manifest's pre-start and post-stop) each run
// in a launcher of their own, started by the supervisor exactly as the
// app's (same clone into the app's cgroup, same fds but the terminal, a
// session of its own) with the app's stage2.App whose Exec is the
// handler's (and no pid file): they get the app's root (the same overlay
// upper layer and volumes, a fresh /dev), user, environment, working
// directory and isolation by the very code that sets up the app. An app
// without handlers costs nothing more:
//
//	supervisor                          per app with a pre-start handler
//	  │ fork launcher, fd 3: handler's App ──▶ mounts the app's root
//	  │ fd 3: "start..." (with the apps'), EOF ──▶ execs the handler
//	  │      timer: HandlerTimeout (rkt.dev/event-handler-timeout)
//	  │◀── exit 0 ─────────────────────────────┘
//	  │ fork the app's launcher, fd 3: App, "start...", EOF (at once)
//	  │   (non-zero, or SIGKILL to its session at the timeout: "rkt: app
//	  │   NAME: pre-start event handler [...] failed ...", the app is
//	  │   recorded 254 and not started, the pod stops)
//	  │ ...
//	  │◀── the app (exec'd) exits, whatever its status
//	  │ fork launcher, fd 3: post-stop handler's App, "start...", EOF
//	  │◀── its exit (a failure is printed and makes the pod's exit code
//	  │    254 if no app failed; SIGKILL to its session at the timeout)
//
// A stopping pod's signals go to the apps and to pre-start handlers (an
// app whose pre-start handler ends while the pod stops is not started);
// post-stop handlers run on within their timeout and the grace period,
// and none starts once the grace period's SIGKILL went out.
//
// If the setup helper fails, it prints why, SIGKILLs the supervisor (which
// started no app), undoes what it did and exits 254; the host-side
// process then exits 254 too.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rkt/rkt/stage1/enter"
	"github.com/rkt/rkt/stage1/gc"
	"github.com/rkt/rkt/stage1/host"
	"github.com/rkt/rkt/stage1/run"
	"github.com/rkt/rkt/stage1/stop"
)

func main() {
	ctx := context.Background()
	args := os.Args[1:]
	switch name := filepath.Base(os.Args[0]); name {
	case "enter":
		os.Exit(enter.Main(ctx, args))
	case "gc":
		os.Exit(gc.Main(ctx, args))
	case "stop":
		os.Exit(stop.Main(ctx, args))
	case host.SetupArgvName:
		os.Exit(run.Setup(ctx, args))
	case host.NetdownArgvName:
		os.Exit(run.Netdown(ctx, args))
	default:
		fmt.Fprintf(os.Stderr, "stage1: run as %q: this binary is run as enter, gc or stop (the stage1 image links those names to it)\n", name)
		os.Exit(254)
	}
}
