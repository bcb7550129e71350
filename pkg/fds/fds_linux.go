// Package fds keeps a process's file descriptors from leaking across
// exec: rkt's caller may leave descriptors open without close-on-exec
// (a shell's `9</tmp`), and every stage of a pod (stage1's run
// entrypoint, the app launcher, enter, the fly flavor) marks everything
// above stderr close-on-exec before it execs anything of the pod, except
// the descriptors it means to pass (see docs/security.md, "File
// descriptors"). It imports nothing large: stage1's small binaries use it.
package fds

import (
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ListenFdsStart is the first descriptor of the sockets systemd passes
// (sd_listen_fds(3)): they are ListenFdsStart..ListenFdsStart+N-1.
const ListenFdsStart = 3

// maxListenFds bounds LISTEN_FDS (systemd's own limit is far lower in
// practice): a larger count is refused as malformed.
const maxListenFds = 1024

// Listening returns the number of sockets systemd passed this process
// (socket activation), by ListenEnv(os.Environ(), os.Getpid()); it also
// fails when one of the descriptors is not open.
func Listening() (int, error) {
	c, err := ListenEnv(os.Environ(), os.Getpid())
	if err != nil {
		return 0, err
	}
	for fd := ListenFdsStart; fd < ListenFdsStart+c; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return 0, errors.New("LISTEN_FDS=" + strconv.Itoa(c) + ": descriptor " + strconv.Itoa(fd) + " is not open")
		}
	}
	return c, nil
}

// ListenEnv returns the number of sockets of socket activation that env
// (a list of K=V) gives process pid: LISTEN_FDS, if LISTEN_PID names
// pid; 0 if there are none or they are for another process. It fails
// on a malformed LISTEN_FDS or LISTEN_PID.
func ListenEnv(env []string, pid int) (int, error) {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	n, lpid := get("LISTEN_FDS"), get("LISTEN_PID")
	if n == "" || lpid == "" {
		return 0, nil
	}
	p, err := strconv.Atoi(lpid)
	if err != nil || p <= 0 {
		return 0, errors.New("LISTEN_PID=" + lpid + ": not a process ID")
	}
	if p != pid {
		return 0, nil
	}
	c, err := strconv.Atoi(n)
	if err != nil || c < 0 || c > maxListenFds {
		return 0, errors.New("LISTEN_FDS=" + n + ": not a number of descriptors (0 to 1024)")
	}
	return c, nil
}

// Passed returns the descriptors, counted from ListenFdsStart, that an
// app is given on purpose beyond stdin, stdout and stderr: the n sockets
// of socket activation (LISTEN_FDS), which every stage hands down to the
// apps that ask for them (and to no other), each stage marking them
// close-on-exec and passing them explicitly, until the app launcher
// leaves them open for the app's exec. Every other descriptor above 2
// is kept from the apps.
func Passed(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = ListenFdsStart + i
	}
	return p
}

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
