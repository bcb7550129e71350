// Package cgroup creates, limits and removes the control groups of rkt pods.
// It works on cgroup v1 (one hierarchy per controller or controller group),
// v2 (the unified hierarchy) and hybrid hosts (v1 controllers plus a unified
// hierarchy for process tracking).
//
// Everything takes the hierarchies as data (mount point, mounted root, the
// process's path), so the logic runs unchanged on a fake cgroupfs made of
// plain directories in tests.
//
// A pod's layout below its cgroup C (C is a new "rkt-<uuid>" child of the
// caller's cgroup, or the caller's own cgroup when rkt runs as a systemd
// service):
//
//	C/stage1      the stage1 processes (v2 forbids processes in C itself
//	              once C delegates controllers to its children)
//	C/app-<name>  one per app, with the app's limits
package cgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Controllers rkt sets limits with.
const (
	CPU    = "cpu"
	Memory = "memory"
	Pids   = "pids"
)

// ErrUnavailable is returned when a limit needs a controller that is
// neither mounted as v1 nor enabled in the unified hierarchy.
var ErrUnavailable = errors.New("cgroup controller unavailable")

// Hierarchy is one mounted cgroup hierarchy and the process's place in it.
type Hierarchy struct {
	// Mount is where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.
	Mount string
	// Root is the hierarchy path mounted there ("/" unless a sub-tree was
	// bind-mounted or a cgroup namespace is in use).
	Root string
	// Unified is true for cgroup2.
	Unified bool
	// Controllers are the v1 controllers of the hierarchy, "name=" entries
	// included (e.g. "cpu", "cpuacct" or "name=systemd"); empty for v2.
	Controllers []string
	// Path is the process's cgroup in the hierarchy, from /proc/PID/cgroup.
	Path string
}

// Dir returns the directory of the cgroup at hierarchy path p.
func (h Hierarchy) Dir(p string) string {
	rel := p
	if h.Root != "/" {
		if r, ok := strings.CutPrefix(p, h.Root); ok && (r == "" || strings.HasPrefix(r, "/")) {
			rel = r
		}
	}
	return filepath.Join(h.Mount, filepath.FromSlash(rel))
}

// Has reports whether the v1 hierarchy carries controller c.
func (h Hierarchy) Has(c string) bool {
	for _, x := range h.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// String names the hierarchy for messages.
// podControllers are the cgroup v1 controllers whose hierarchies get a
// pod's cgroups: the ones its limits and device allowlist use, and the
// CPU accounting that shares a hierarchy with cpu on most hosts.
var podControllers = []string{CPU, "cpuacct", Memory, Pids, Devices}

// ForPod returns the hierarchies of hs a pod gets cgroups in: the unified
// one, name=systemd (where systemd and rkt find the pod's processes), and
// the v1 hierarchies of the controllers the pod's limits, device
// allowlist and accounting use (cpu, cpuacct, memory, pids, devices). In
// the others (cpuset, blkio, freezer, ...), where no setting of rkt
// applies, the pod's processes stay in the caller's cgroup: each cgroup
// made costs mkdirs and migrations on the start path and a bind mount in
// every app.
func ForPod(hs []Hierarchy) []Hierarchy {
	var out []Hierarchy
	for _, h := range hs {
		if h.Unified || UsedByPods(strings.Join(h.Controllers, ",")) {
			out = append(out, h)
		}
	}
	return out
}

// UsedByPods reports whether pods get cgroups in the hierarchy whose
// controllers field of /proc/PID/cgroup is controllers ("" for the
// unified hierarchy): see ForPod.
func UsedByPods(controllers string) bool {
	if controllers == "" {
		return true
	}
	for _, c := range strings.Split(controllers, ",") {
		if c == "name=systemd" {
			return true
		}
		for _, pc := range podControllers {
			if c == pc {
				return true
			}
		}
	}
	return false
}

func (h Hierarchy) String() string {
	if h.Unified {
		return "unified hierarchy at " + h.Mount
	}
	return strings.Join(h.Controllers, ",") + " hierarchy at " + h.Mount
}

// mount is one cgroup mount from mountinfo.
type mount struct {
	point, root string
	unified     bool
	opts        map[string]bool // super options (v1 controllers, name=...)
}

func parseMounts(r io.Reader) ([]mount, error) {
	infos, err := mountinfo.GetMountsFromReader(r, func(i *mountinfo.Info) (skip, stop bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	out := make([]mount, 0, len(infos))
	for _, in := range infos {
		m := mount{root: in.Root, point: in.Mountpoint, opts: map[string]bool{}, unified: in.FSType == "cgroup2"}
		if !m.unified {
			for _, o := range strings.Split(in.VFSOptions, ",") {
				m.opts[o] = true
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// Parse matches the lines of /proc/PID/cgroup with the cgroup mounts of
// /proc/PID/mountinfo. Hierarchies that are not mounted are left out.
func Parse(mountinfo, procCgroup io.Reader) ([]Hierarchy, error) {
	mounts, err := parseMounts(mountinfo)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(procCgroup)
	if err != nil {
		return nil, fmt.Errorf("read cgroup membership: %w", err)
	}
	var out []Hierarchy
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		p := path.Clean("/" + parts[2])
		if parts[1] == "" {
			for _, m := range mounts {
				if m.unified {
					out = append(out, Hierarchy{Mount: m.point, Root: m.root, Unified: true, Path: p})
					break
				}
			}
			continue
		}
		ctrls := strings.Split(parts[1], ",")
	mounts:
		for _, m := range mounts {
			if m.unified {
				continue
			}
			for _, c := range ctrls {
				if !m.opts[c] {
					continue mounts
				}
			}
			out = append(out, Hierarchy{Mount: m.point, Root: m.root, Controllers: ctrls, Path: p})
			break
		}
	}
	return out, nil
}

// Self returns the hierarchies of the calling process.
func Self() ([]Hierarchy, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("find cgroup hierarchies: %w", err)
	}
	defer mi.Close()
	pc, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("find cgroup hierarchies: %w", err)
	}
	defer pc.Close()
	return Parse(mi, pc)
}

// UnderSystemdUnit reports whether the process runs as (part of) a systemd
// service or a transient scope other than a login session, judged from its
// path in the name=systemd or unified hierarchy: such a unit owns its cgroup
// (Delegate=yes), so a pod stays in it instead of making a sub-cgroup.
func UnderSystemdUnit(hs []Hierarchy) bool {
	for _, h := range hs {
		if !h.Unified && !h.Has("name=systemd") {
			continue
		}
		base := path.Base(h.Path)
		if strings.HasSuffix(base, ".service") {
			return true
		}
		if strings.HasSuffix(base, ".scope") && !strings.HasPrefix(base, "session-") {
			return true
		}
		if h.Has("name=systemd") {
			return false // hybrid: the unified line says the same
		}
	}
	return false
}
