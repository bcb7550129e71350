package cgroup

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bpf(2) attributes of BPF_PROG_LOAD and BPF_PROG_ATTACH (the first
// fields of union bpf_attr; the kernel zeroes the rest).
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [16]byte
}

type progAttachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
}

// bigEndian: the machine stores the high byte first.
var bigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// license: the program calls no helper, so any license does.
var license = []byte("Apache-2.0\x00")

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	runtime.KeepAlive(attr)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// loadDeviceProgram loads the device program of allow and returns its
// descriptor; a refusal of the verifier says why.
func loadDeviceProgram(allow []Device) (int, error) {
	prog := deviceProgram(allow)
	if bigEndian {
		// struct bpf_insn's register bit fields: dst is the high nibble.
		for i := range prog {
			prog[i].regs = prog[i].regs>>4 | prog[i].regs<<4
		}
	}
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "rkt_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	if err == nil {
		return fd, nil
	}
	if err == unix.EACCES || err == unix.EINVAL {
		// Again, with the verifier's log.
		log := make([]byte, 16<<10)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		runtime.KeepAlive(prog)
		runtime.KeepAlive(log)
		if err2 == nil {
			return fd, nil
		}
		if s := strings.TrimSpace(unix.ByteSliceToString(log)); s != "" {
			return -1, fmt.Errorf("load the device program: %w (verifier: %s)", err2, s)
		}
	}
	return -1, fmt.Errorf("load the device program: %w", err)
}

// attachDeviceProgram loads the device program of allow and attaches it
// to the cgroup v2 directory dir (BPF_F_ALLOW_MULTI: it runs after the
// programs of dir's ancestors, and each must allow). It stays attached
// until the cgroup is removed.
func attachDeviceProgram(dir string, allow []Device) error {
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(cg)
	prog, err := loadDeviceProgram(allow)
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	attr := progAttachAttr{
		targetFd: uint32(cg), attachBpfFd: uint32(prog),
		attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return fmt.Errorf("attach the device program: %w", err)
	}
	return nil
}
