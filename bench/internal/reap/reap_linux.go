// Package reap lets a benchmark wait for what the tools it times leave
// running (podman's conmon and cleanup processes, for one), so that their
// work stays out of the next timed command.
package reap

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Adopt makes this process the child subreaper of its descendants
// (on) or stops that (off): processes a tool leaves behind (podman's
// conmon, for one) are then reparented here instead of to init, so that
// Orphans can wait for them between rounds.
func Adopt(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(v), 0, 0, 0)
}

// Orphans waits, up to limit, until every child of this process has
// exited, and returns how many it reaped and whether some still run. It
// reaps any child: call it only while no exec.Cmd of ours is running.
func Orphans(limit time.Duration) (int, bool) {
	deadline := time.Now().Add(limit)
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return n, false
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return n, true
		case pid > 0:
			n++
			continue
		}
		if time.Now().After(deadline) {
			return n, true
		}
		time.Sleep(time.Millisecond)
	}
}
