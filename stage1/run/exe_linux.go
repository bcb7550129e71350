package run

import (
	"fmt"
	"os"

	"github.com/rkt/rkt/stage2"
)

// stage1Exe opens this process's executable (the stage1 binary in the
// image store) for the supervisor and the stage2 launchers to run from.
//
// A pod process cannot overwrite it through /proc/<pid>/exe (the attack of
// CVE-2019-5736): the supervisor is pid 1 of the pod and executes this file
// for the pod's whole life, so the kernel refuses to open it for writing
// (ETXTBSY), and every pod process dies with the supervisor; the supervisor
// is also not dumpable, so without CAP_SYS_PTRACE its /proc/1/exe cannot be
// opened at all. (An earlier version ran from a sealed in-memory copy,
// which cost a copy and 3-4 MiB of memory per pod for no further gain.)
func stage1Exe() (*os.File, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open the stage1 binary: %w", err)
	}
	return f, nil
}

// stage2Mount describes a read-only bind of a host cgroup directory.
func stage2Mount(src, target string) stage2.Mount {
	return stage2.Mount{Volume: "cgroup", Source: src, Target: target, ReadOnly: true}
}
