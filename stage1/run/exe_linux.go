package run

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage2"
)

// sealedExe copies this process's executable into a sealed memfd (no
// write, grow, shrink, or further sealing). The supervisor and the stage2
// launchers run from it, so a process in the pod that reaches
// /proc/<pid>/exe of one of them finds an immutable in-memory copy, never
// the stage1 binary on the host (CVE-2019-5736).
func sealedExe() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("copy the stage1 binary: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("copy the stage1 binary: %w", err)
	}
	fd, err := unix.MemfdCreate("rkt-stage1", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("copy the stage1 binary into memory: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "memfd:rkt-stage1")
	size := fi.Size()
	for done := int64(0); done < size; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(size-done))
		if err != nil {
			dst.Close()
			return nil, fmt.Errorf("copy the stage1 binary into memory: %w", err)
		}
		if n == 0 {
			break
		}
		done += int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	// F_SEAL_WRITE fails with EBUSY while the kernel still holds page
	// references from the copy (memfd_wait_for_pins gives up after a
	// while under load): try again briefly.
	for try := 0; ; try++ {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		if err == nil {
			return dst, nil
		}
		if err != unix.EBUSY || try == 50 {
			dst.Close()
			return nil, fmt.Errorf("seal the in-memory stage1 binary: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// stage2Mount describes a read-only bind of a host cgroup directory.
func stage2Mount(src, target string) stage2.Mount {
	return stage2.Mount{Volume: "cgroup", Source: src, Target: target, ReadOnly: true}
}
