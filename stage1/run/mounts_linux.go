package run

import "github.com/rkt/rkt/stage2"

// stage2Mount describes a read-only bind of a host cgroup directory.
func stage2Mount(src, target string) stage2.Mount {
	return stage2.Mount{Volume: "cgroup", Source: src, Target: target, ReadOnly: true}
}
