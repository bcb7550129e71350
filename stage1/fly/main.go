// Command stage1-fly is the fly flavor's binary: one app, chrooted into
// its root, in the host's namespaces (PID, mount, network, UTS, IPC) with
// the caller's privileges: no capability bounding, no seccomp, no cgroup
// limits. It is for privileged host agents. As with the default flavor,
// the image links /init, /enter, /gc and /stop to it and the name it runs
// as picks the entrypoint:
//
//	init   mount the app's root (overlayfs) with /dev, /proc and /sys of
//	       the host bound into it, its volumes, /etc/hosts and
//	       /etc/resolv.conf of the host; run the app's pre-start event
//	       handler, the app and its post-stop event handler chrooted, one
//	       after the other (a handler is killed after its timeout);
//	       forward SIGTERM/SIGINT/SIGHUP to whichever runs; record the
//	       app's exit status; unmount; exit with its code. The mounts are made in the host's mount
//	       namespace (so that host agents see what they mount), so gc
//	       unmounts whatever a killed pod left.
//	enter  stage1/enter.ChrootMain: chroot into the app's root, in the
//	       host's namespaces, as root with the caller's privileges
//	gc     stage1/gc
//	stop   stage1/stop (SIGTERM or SIGKILL to init, which forwards it)
//
// There is no re-exec: the app is started by Go's os/exec with Chroot and
// Credential.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rkt/rkt/stage1/enter"
	"github.com/rkt/rkt/stage1/gc"
	"github.com/rkt/rkt/stage1/stop"
)

func main() {
	ctx := context.Background()
	args := os.Args[1:]
	switch name := filepath.Base(os.Args[0]); name {
	case "init":
		os.Exit(runMain(ctx, args))
	case "enter":
		os.Exit(enter.ChrootMain(ctx, args))
	case "gc":
		os.Exit(gc.Main(ctx, args))
	case "stop":
		os.Exit(stop.Main(ctx, args))
	default:
		fmt.Fprintf(os.Stderr, "stage1-fly: run as %q: this binary is run as init, enter, gc or stop (the stage1 image links those names to it)\n", name)
		os.Exit(254)
	}
}
