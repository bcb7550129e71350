package main

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// printTTY prints the terminal on stdin ("tty: PATH", readlink of
// /proc/self/fd/0; "tty dev: N", the st_dev of its file system, which
// tells devpts instances apart) and every open descriptor that is a
// character device ("char fd N: dev D rdev R").
func (p *printer) printTTY() error {
	name, err := os.Readlink("/proc/self/fd/0")
	if err != nil {
		return fmt.Errorf("print tty: %w", err)
	}
	p.kv("tty", name)
	var st unix.Stat_t
	if err := unix.Fstat(0, &st); err != nil {
		return fmt.Errorf("print tty: %w", err)
	}
	p.kv("tty dev", strconv.FormatUint(st.Dev, 10))
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("print tty: %w", err)
	}
	var fds []int
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	for _, fd := range fds {
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			p.kv("char fd "+strconv.Itoa(fd), fmt.Sprintf("dev %d rdev %d", st.Dev, st.Rdev))
		}
	}
	return nil
}

// printWinsize prints stdin's window size, "winsize: ROWS COLS".
func (p *printer) printWinsize() error {
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		return fmt.Errorf("window size: %w", err)
	}
	return p.kv("winsize", fmt.Sprintf("%d %d", ws.Row, ws.Col))
}

// waitWinch prints "waiting for SIGWINCH", waits (10 s at most) for it
// and prints the new window size.
func (p *printer) waitWinch() error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	defer signal.Stop(ch)
	p.raw("waiting for SIGWINCH\n")
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no SIGWINCH in 10s")
	}
	return p.printWinsize()
}
