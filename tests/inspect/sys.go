package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errnoName is "ok" for nil, else the errno's name (EPERM...) or the
// error's text.
func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// mknod makes the node spec describes, "PATH,TYPE,MAJOR,MINOR" (TYPE b or
// c, mode 0666), and prints "mknod PATH: ok|ERRNO".
func (p *printer) mknod(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 4 || (f[1] != "b" && f[1] != "c") {
		return fmt.Errorf("--mknod=%s: want PATH,b|c,MAJOR,MINOR", spec)
	}
	major, err1 := strconv.ParseUint(f[2], 10, 32)
	minor, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--mknod=%s: bad device numbers", spec)
	}
	mode := uint32(unix.S_IFCHR)
	if f[1] == "b" {
		mode = unix.S_IFBLK
	}
	err := unix.Mknod(f[0], mode|0o666, int(unix.Mkdev(uint32(major), uint32(minor))))
	return p.kv("mknod "+f[0], errnoName(err))
}

// openFile opens the file spec describes, "PATH,r|w|rw", closes it at once
// (nothing is read or written) and prints "open PATH: ok|ERRNO".
func (p *printer) openFile(spec string) error {
	path, mode, ok := strings.Cut(spec, ",")
	flags, known := map[string]int{"r": unix.O_RDONLY, "w": unix.O_WRONLY, "rw": unix.O_RDWR}[mode]
	if !ok || !known {
		return fmt.Errorf("--open-file=%s: want PATH,r|w|rw", spec)
	}
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err == nil {
		unix.Close(fd)
	}
	return p.kv("open "+path, errnoName(err))
}

// fds prints "fd: N TARGET" for every open descriptor but the one that
// reads /proc/self/fd.
func (p *printer) fds() error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	var nums []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != int(d.Fd()) {
			nums = append(nums, fd)
		}
	}
	sort.Ints(nums)
	for _, fd := range nums {
		target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			continue // closed meanwhile (the runtime's)
		}
		p.kv("fd", strconv.Itoa(fd)+" "+target)
	}
	return nil
}

// tryIOURing calls io_uring_setup for a ring of one entry and prints
// "io_uring_setup: ok|ERRNO" (the ring, if made, is closed).
func (p *printer) tryIOURing() error {
	var params [120]byte // struct io_uring_params, zeroed
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		return p.kv("io_uring_setup", errnoName(errno))
	}
	unix.Close(int(fd))
	return p.kv("io_uring_setup", "ok")
}
