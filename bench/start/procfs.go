package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage1/podcfg"
)

// cgroupsFile is where, in a pod directory, stage1 lists the cgroup
// directories it made.
const cgroupsFile = podcfg.CgroupsFile

// mem is the memory of one process (or a sum), KiB, from smaps_rollup.
type mem struct {
	rss, pss, anon, file, shmem int64
}

func (m *mem) add(o mem) {
	m.rss += o.rss
	m.pss += o.pss
	m.anon += o.anon
	m.file += o.file
	m.shmem += o.shmem
}

// parseSmapsRollup reads /proc/PID/smaps_rollup.
func parseSmapsRollup(r io.Reader) (mem, error) {
	var m mem
	fields := map[string]*int64{"Rss:": &m.rss, "Pss:": &m.pss, "Pss_Anon:": &m.anon, "Pss_File:": &m.file, "Pss_Shmem:": &m.shmem}
	found := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		p, ok := fields[f[0]]
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("smaps_rollup line %q: %w", sc.Text(), err)
		}
		*p = v
		found = found || f[0] == "Rss:"
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !found {
		return m, errors.New("smaps_rollup has no Rss line (kernel older than 4.14?)")
	}
	return m, nil
}

// readMem returns the memory of process pid.
func readMem(pid int) (mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return mem{}, err
	}
	defer f.Close()
	m, err := parseSmapsRollup(f)
	if err != nil {
		return m, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

// childrenOf returns the children of process pid (all its threads').
func childrenOf(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// ppidOf returns the parent of process pid.
func ppidOf(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parsePPid(string(data))
}

// parsePPid returns the parent PID field of a /proc/PID/stat line (the
// command, in parentheses, may hold spaces and parentheses).
func parsePPid(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat line %q has no command", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("stat line %q is too short", stat)
	}
	return strconv.Atoi(f[1])
}

// meminfo holds /proc/meminfo, KiB.
type meminfo map[string]int64

func parseMeminfo(r io.Reader) (meminfo, error) {
	m := meminfo{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil {
			m[k] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := m["MemTotal"]; !ok {
		return nil, errors.New("meminfo has no MemTotal")
	}
	return m, nil
}

func readMeminfo() (meminfo, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMeminfo(f)
}

// used is free(1)'s "used": total - free - buffers - cache.
func (m meminfo) used() int64 {
	return m["MemTotal"] - m["MemFree"] - m["Buffers"] - m["Cached"] - m["SReclaimable"]
}

// cgroupMemory sums the memory use (bytes) of the top directories of a
// pod's cgroup list (those whose parent is not listed) that have a memory
// controller: memory.usage_in_bytes (v1) or memory.current (v2).
func cgroupMemory(dirs []string) (int64, bool) {
	listed := map[string]bool{}
	for _, d := range dirs {
		listed[d] = true
	}
	var sum int64
	found := false
	for _, d := range dirs {
		if listed[filepath.Dir(d)] {
			continue
		}
		for _, f := range []string{"memory.usage_in_bytes", "memory.current"} {
			data, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				continue
			}
			if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
				sum += n
				found = true
				break
			}
		}
	}
	return sum, found
}

// cgroupLayout says which cgroup hierarchies the host mounts.
func cgroupLayout() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "v2 (unified)"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		return "v1 hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"
	}
	return "v1"
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuModel returns the model name of the first CPU.
func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// mountsUnder returns the mount points below root in a mountinfo table,
// deepest first.
func mountsUnder(r io.Reader, root string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if strings.HasPrefix(mp, root+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount below root.
func unmountUnder(root string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	mps, err := mountsUnder(f, root)
	f.Close()
	if err != nil {
		return fmt.Errorf("read the mount table: %w", err)
	}
	var errs []error
	for _, mp := range mps {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}
