package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// cgMount is one mounted cgroup hierarchy.
type cgMount struct {
	root, point string          // mountinfo fields 4 and 5
	v2          bool            // cgroup2 (unified)
	controllers map[string]bool // v1 only: controllers bound to it
}

// cgMembership is one line of /proc/self/cgroup.
type cgMembership struct {
	controllers []string // empty for the v2 line "0::/path"
	path        string
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readCgroupMounts() ([]cgMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []cgMount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		m := cgMount{root: unescapeMountinfo(fields[3]), point: unescapeMountinfo(fields[4])}
		switch tail[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			m.controllers = map[string]bool{}
			for _, opt := range strings.Split(tail[2], ",") {
				m.controllers[opt] = true
			}
		default:
			continue
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

func readCgroupMemberships() ([]cgMembership, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	var out []cgMembership
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		m := cgMembership{path: parts[2]}
		if parts[1] != "" {
			m.controllers = strings.Split(parts[1], ",")
		}
		out = append(out, m)
	}
	return out, nil
}

// candidateDirs lists where the process's cgroup directory may be under a
// mount: the mount root may be the cgroup itself (cgroup namespace or bind
// mount of the pod's cgroup), an ancestor of it, or the whole hierarchy.
func candidateDirs(m cgMount, path string) []string {
	var dirs []string
	if rel, ok := strings.CutPrefix(path, m.root); ok && (m.root == "/" || rel == "" || strings.HasPrefix(rel, "/")) {
		dirs = append(dirs, filepath.Join(m.point, rel))
	}
	dirs = append(dirs, filepath.Join(m.point, path), m.point)
	return dirs
}

// cgroupFile finds the file v1File (in the hierarchy that has controller) or,
// failing that, v2File in the unified hierarchy, for this process's cgroup.
// It returns the file's trimmed contents and whether it came from v2.
func cgroupFile(controller, v1File, v2File string) (string, bool, error) {
	mounts, err := readCgroupMounts()
	if err != nil {
		return "", false, err
	}
	members, err := readCgroupMemberships()
	if err != nil {
		return "", false, err
	}
	try := func(m cgMount, path, name string) (string, bool) {
		for _, d := range candidateDirs(m, path) {
			data, err := os.ReadFile(filepath.Join(d, name))
			if err == nil {
				return strings.TrimSpace(string(data)), true
			}
		}
		return "", false
	}
	for _, mem := range members {
		for _, c := range mem.controllers {
			if c != controller {
				continue
			}
			for _, m := range mounts {
				if m.v2 || !m.controllers[controller] {
					continue
				}
				if v, ok := try(m, mem.path, v1File); ok {
					return v, false, nil
				}
			}
		}
	}
	for _, mem := range members {
		if len(mem.controllers) != 0 {
			continue
		}
		for _, m := range mounts {
			if !m.v2 {
				continue
			}
			if v, ok := try(m, mem.path, v2File); ok {
				return v, true, nil
			}
		}
	}
	return "", false, fmt.Errorf("no cgroup file %s (v1 %s controller) or %s (v2) found for this process: %w",
		v1File, controller, v2File, fs.ErrNotExist)
}

func (p *printer) memoryLimit() error {
	v, _, err := cgroupFile("memory", "memory.limit_in_bytes", "memory.max")
	if err != nil {
		return err
	}
	return p.kv("memory limit", v)
}

func (p *printer) cpuQuota() error {
	v, v2, err := cgroupFile("cpu", "cpu.cfs_quota_us", "cpu.max")
	if err != nil {
		return err
	}
	if v2 {
		quota, period, ok := strings.Cut(v, " ")
		if !ok {
			return fmt.Errorf("cpu.max has unexpected content %q", v)
		}
		return p.kv("cpu quota", quota+"/"+period)
	}
	period, _, err := cgroupFile("cpu", "cpu.cfs_period_us", "cpu.max")
	if err != nil {
		return err
	}
	if v == "-1" {
		v = "max"
	}
	return p.kv("cpu quota", v+"/"+period)
}

func (p *printer) cpuShares() error {
	v, v2, err := cgroupFile("cpu", "cpu.shares", "cpu.weight")
	if err != nil {
		return err
	}
	if v2 {
		return p.kv("cpu weight", v)
	}
	return p.kv("cpu shares", v)
}

func (p *printer) pidsLimit() error {
	v, _, err := cgroupFile("pids", "pids.max", "pids.max")
	if errors.Is(err, fs.ErrNotExist) && inRootCgroup("pids") {
		// The root cgroup has no pids.max: no limit applies.
		return p.kv("pids limit", "max")
	}
	if err != nil {
		return err
	}
	return p.kv("pids limit", v)
}

// inRootCgroup reports whether this process sits in the root cgroup of the
// v1 hierarchy with controller, or of the v2 hierarchy when there is no such
// v1 hierarchy.
func inRootCgroup(controller string) bool {
	members, err := readCgroupMemberships()
	if err != nil {
		return false
	}
	v2Root := false
	for _, m := range members {
		if len(m.controllers) == 0 {
			v2Root = m.path == "/"
		}
		for _, c := range m.controllers {
			if c == controller {
				return m.path == "/"
			}
		}
	}
	return v2Root
}
