package main

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// escapeMntns tries what a hostile command run by `rkt enter` would: join
// the mount namespace /proc/self/ns/mnt names (as `nsenter
// --mount=/proc/self/ns/mnt` does), which resets the root to that
// namespace's, leaving any chroot, then write path there. It prints
// "escape mntns: joined" or the error, then "escape write: ok" or the
// error; neither failure ends the program.
func (p *printer) escapeMntns(path string) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread's root and namespace change: it must not go back to
		// the runtime (a locked goroutine's thread dies with it).
		runtime.LockOSThread()
		fd, err := unix.Open("/proc/self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			defer unix.Close(fd)
			if err = unix.Unshare(unix.CLONE_FS); err == nil {
				err = unix.Setns(fd, unix.CLONE_NEWNS)
			}
		}
		if err != nil {
			p.kv("escape mntns", err.Error())
		} else {
			p.kv("escape mntns", "joined")
		}
		if err := os.WriteFile(path, []byte("escaped\n"), 0o644); err != nil {
			p.kv("escape write", err.Error())
			return
		}
		p.kv("escape write", "ok")
	}()
	<-done
	return nil
}

// tiocsti pushes s into the input of the terminal on stdin (TIOCSTI), as
// a hostile command given the operator's terminal would, for the shell
// the operator returns to: "tiocsti: ok" or the error.
func (p *printer) tiocsti(s string) error {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&b))); errno != 0 {
			return p.kv("tiocsti", errno.Error())
		}
	}
	return p.kv("tiocsti", "ok")
}
