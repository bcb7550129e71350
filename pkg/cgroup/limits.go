package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// CFSPeriod is the CFS period rkt uses, in microseconds (100 ms): a CPU
// limit of 750m becomes a quota of 75000 per 100000.
const CFSPeriod = 100000

// Limits are the resource limits of one app. Zero fields are unlimited.
type Limits struct {
	// CPUMilli is the CPU limit in thousandths of a CPU (750 = 0.75 CPU).
	CPUMilli int64
	// MemoryBytes is the memory limit.
	MemoryBytes int64
	// CPUShares is the relative CPU weight in v1 units (2..262144, 1024
	// is the kernel default); v2 gets the equivalent cpu.weight.
	CPUShares int64
	// PidsMax is the maximum number of tasks.
	PidsMax int64
	// PidsMaxIsDefault says PidsMax is rkt's default rather than asked
	// for: if no pids controller is usable the limit is skipped instead of
	// failing the pod.
	PidsMaxIsDefault bool
}

// Controllers returns the controllers the limits need.
func (l Limits) Controllers() []string {
	var cs []string
	if l.CPUMilli > 0 || l.CPUShares > 0 {
		cs = append(cs, CPU)
	}
	if l.MemoryBytes > 0 {
		cs = append(cs, Memory)
	}
	if l.PidsMax > 0 {
		cs = append(cs, Pids)
	}
	return cs
}

// optional reports whether a missing controller c may be skipped.
func (l Limits) optional(c string) bool {
	return c == Pids && l.PidsMaxIsDefault
}

// CPUQuota returns the CFS quota in microseconds per CFSPeriod (at least
// the kernel's minimum of 1000).
func (l Limits) CPUQuota() int64 {
	q := l.CPUMilli * CFSPeriod / 1000
	if q < 1000 {
		q = 1000
	}
	return q
}

// CPUWeight converts v1 shares to a v2 cpu.weight (1..10000), the mapping
// systemd and runc use.
func CPUWeight(shares int64) int64 {
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// setting is one value written to one cgroup file.
type setting struct{ file, value string }

// v1Settings returns the files to write for controller c on cgroup v1.
func (l Limits) v1Settings(c string) []setting {
	var s []setting
	switch c {
	case CPU:
		if l.CPUShares > 0 {
			s = append(s, setting{"cpu.shares", strconv.FormatInt(l.CPUShares, 10)})
		}
		if l.CPUMilli > 0 {
			s = append(s,
				setting{"cpu.cfs_period_us", strconv.Itoa(CFSPeriod)},
				setting{"cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuota(), 10)})
		}
	case Memory:
		s = append(s, setting{"memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)})
	case Pids:
		s = append(s, setting{"pids.max", strconv.FormatInt(l.PidsMax, 10)})
	}
	return s
}

// v2Settings returns the files to write for controller c on cgroup v2.
func (l Limits) v2Settings(c string) []setting {
	var s []setting
	switch c {
	case CPU:
		if l.CPUShares > 0 {
			s = append(s, setting{"cpu.weight", strconv.FormatInt(CPUWeight(l.CPUShares), 10)})
		}
		if l.CPUMilli > 0 {
			s = append(s, setting{"cpu.max", fmt.Sprintf("%d %d", l.CPUQuota(), CFSPeriod)})
		}
	case Memory:
		s = append(s, setting{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)})
	case Pids:
		s = append(s, setting{"pids.max", strconv.FormatInt(l.PidsMax, 10)})
	}
	return s
}

// write writes value to dir/file (an existing cgroup file, or a new one on
// a fake cgroupfs).
func write(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set cgroup %s to %q: %w", p, value, err)
	}
	return nil
}
