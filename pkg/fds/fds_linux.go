// Package fds keeps a process's file descriptors from leaking across
// exec: rkt's caller may leave descriptors open without close-on-exec
// (a shell's `9</tmp`), and every stage of a pod (stage1's run
// entrypoint, the app launcher, enter, the fly flavor) marks everything
// above stderr close-on-exec before it execs anything of the pod, except
// the descriptors it means to pass (see docs/security.md, "File
// descriptors"). It imports nothing large: stage1's small binaries use it.
package fds

import (
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// Passed are the descriptors, counted from 3, that an app is given on
// purpose beyond stdin, stdout and stderr: none yet. Socket activation
// (LISTEN_FDS) will pass its sockets here; until then every descriptor
// above 2 is kept from the apps.
var Passed []int

// CloseOnExecFrom marks every open descriptor from low up close-on-exec,
// except those in keep (which are left as they are). It uses
// close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11) and, where that fails,
// the list in /proc/self/fd. Descriptors stay open in this process.
func CloseOnExecFrom(low int, keep ...int) error {
	ks := append([]int(nil), keep...)
	sort.Ints(ks)
	next := low
	for _, k := range ks {
		if k < next {
			continue
		}
		if k > next {
			if err := cloexecRange(next, k-1); err != nil {
				return err
			}
		}
		next = k + 1
	}
	return cloexecRange(next, -1)
}

// cloexecRange marks the descriptors first..last (-1: no end) close-on-exec.
func cloexecRange(first, last int) error {
	end := ^uint(0)
	if last >= 0 {
		end = uint(last)
	}
	if unix.CloseRange(uint(first), end, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return nil
	}
	// Before Linux 5.11 (ENOSYS; EINVAL on 5.9 and 5.10, which lack the
	// flag), or under a seccomp filter that does not know the call.
	return cloexecProc(first, last)
}

// cloexecProc is cloexecRange by the list of /proc/self/fd.
func cloexecProc(first, last int) error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < first || (last >= 0 && fd > last) {
			continue
		}
		unix.CloseOnExec(fd) // the directory's own descriptor is closed: EBADF
	}
	return nil
}
