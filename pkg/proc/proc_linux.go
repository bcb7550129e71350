// Package proc identifies a process recorded in a pid file so that it can
// be signalled later without hitting another process that reused its pid,
// whatever root or mount namespace the caller sees the pod directory from.
//
// A pid file written by Record holds the pid, as rkt's pid files always
// have; beside it, a file with the suffix StartSuffix holds the process's
// start time (field 22 of /proc/PID/stat, in clock ticks since boot). The
// pair names one process for the life of the machine: a reused pid has a
// later start time. Open checks the pair against the live process and pins
// it with a pidfd (kernel ≥ 5.3), so the signal sent through the Handle
// reaches that process or nothing.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// StartSuffix is appended to a pid file's name for its start-time file.
const StartSuffix = ".start"

var (
	// ErrExited means the recorded process is gone (no process has its
	// pid, or the one that has is a zombie).
	ErrExited = errors.New("the process has exited")
	// ErrNotIdentified means the recorded process cannot be told apart
	// from another one: the pid now belongs to a process that started at
	// another time, or no start time was recorded.
	ErrNotIdentified = errors.New("the process cannot be identified")
)

// Process is a process recorded in a pid file.
type Process struct {
	Pid int
	// Start is the process's start time in clock ticks since boot.
	Start uint64
}

// StartTime returns the start time of the live process pid (field 22 of
// /proc/PID/stat). A process that does not exist, or is a zombie, gives
// ErrExited.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: the fields after it follow the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: unreadable /proc/%d/stat", pid, pid)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (the state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("pid %d: unreadable /proc/%d/stat", pid, pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: unreadable start time in /proc/%d/stat", pid, pid)
	}
	return start, nil
}

// Record writes pidFile for the live process pid: first its start time
// beside it, then the pid itself, so that a reader that finds the pid
// file finds the start time too. Neither ends in a newline, as rkt's pid
// files never have.
func Record(pidFile string, pid int) error {
	start, err := StartTime(pid)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pidFile+StartSuffix, []byte(strconv.FormatUint(start, 10)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o644)
}

// Load reads a pid file written by Record. A pid file without its start
// time gives ErrNotIdentified.
func Load(pidFile string) (Process, error) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return Process{}, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return Process{}, fmt.Errorf("%s: bad content %q", pidFile, data)
	}
	data, err = os.ReadFile(pidFile + StartSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return Process{}, fmt.Errorf("pid %d: no start time beside %s: %w", pid, pidFile, ErrNotIdentified)
	}
	if err != nil {
		return Process{}, err
	}
	start, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return Process{}, fmt.Errorf("%s%s: bad content %q", pidFile, StartSuffix, data)
	}
	return Process{Pid: pid, Start: start}, nil
}

// Check tells whether the recorded process still runs: nil if it does,
// ErrExited if it is gone, ErrNotIdentified if its pid now belongs to
// another process.
func (p Process) Check() error {
	start, err := StartTime(p.Pid)
	if err != nil {
		return err
	}
	if start != p.Start {
		return fmt.Errorf("pid %d now belongs to a process started at tick %d, not at %d as recorded: %w",
			p.Pid, start, p.Start, ErrNotIdentified)
	}
	return nil
}

// Handle is an open, checked reference to a recorded process.
type Handle struct {
	p    Process
	fd   int // a pidfd, or -1 on kernels without pidfd_open
	done bool
}

// Open pins the recorded process with a pidfd and checks that the pinned
// process is the recorded one. It returns ErrExited or ErrNotIdentified
// as Check does.
func (p Process) Open() (*Handle, error) {
	fd, err := unix.PidfdOpen(p.Pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, fmt.Errorf("pid %d: %w", p.Pid, ErrExited)
	case errors.Is(err, unix.ENOSYS):
		fd = -1
	case err != nil:
		return nil, fmt.Errorf("pid %d: pidfd_open: %w", p.Pid, err)
	}
	h := &Handle{p: p, fd: fd}
	// The pidfd holds the process: if it is still alive after the check,
	// the check read that process's /proc entry and not a successor's.
	if err := p.Check(); err != nil {
		// A pinned process that died between pidfd_open and the check
		// has exited, whoever has its pid now.
		if fd >= 0 && errors.Is(err, ErrNotIdentified) && errors.Is(unix.PidfdSendSignal(fd, 0, nil, 0), unix.ESRCH) {
			err = fmt.Errorf("pid %d: %w", p.Pid, ErrExited)
		}
		h.Close()
		return nil, err
	}
	return h, nil
}

// Signal sends sig to the process. ErrExited means it was gone by then.
func (h *Handle) Signal(sig unix.Signal) error {
	var err error
	if h.fd >= 0 {
		err = unix.PidfdSendSignal(h.fd, sig, nil, 0)
	} else {
		err = unix.Kill(h.p.Pid, sig)
	}
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pid %d: %w", h.p.Pid, ErrExited)
	}
	if err != nil {
		return fmt.Errorf("signal pid %d: %w", h.p.Pid, err)
	}
	return nil
}

// Close releases the pidfd.
func (h *Handle) Close() error {
	if h.done || h.fd < 0 {
		return nil
	}
	h.done = true
	return unix.Close(h.fd)
}

// WaitExit waits up to timeout for the process to exit and reports
// whether it did (on kernels without pidfds, by polling its identity).
func (h *Handle) WaitExit(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	if h.fd >= 0 {
		for {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(left.Milliseconds()))
			if err == unix.EINTR {
				continue
			}
			return err == nil && n > 0
		}
	}
	for {
		if err := h.p.Check(); errors.Is(err, ErrExited) || errors.Is(err, ErrNotIdentified) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
