package seccomp

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Load installs the program on the calling thread only, so the caller
// must hold it with runtime.LockOSThread and exec the app from it; the
// app inherits the filter. The thread needs no_new_privs or CAP_SYS_ADMIN.
func Load(raw []bpf.RawInstruction) error {
	if len(raw) == 0 {
		return fmt.Errorf("load seccomp filter: empty program")
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("load seccomp filter: %w", errno)
	}
	return nil
}
