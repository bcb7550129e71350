package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Names of the sub-cgroups of a pod.
const (
	Stage1Leaf = "stage1"
	appPrefix  = "app-"
)

// AppLeaf returns the name of app's sub-cgroup.
func AppLeaf(app string) string { return appPrefix + app }

// Pod is a pod's cgroup in every hierarchy of its caller.
type Pod struct {
	hs      []Hierarchy
	paths   []string // the pod cgroup's path, per hierarchy
	own     bool     // the pod cgroup is ours (not the caller's unit's)
	created []string // directories made, in creation order
}

// NewPod plans the cgroups of pod uuid: "rkt-<uuid>" below the caller's
// cgroup in every hierarchy, or the caller's cgroup itself when inUnit
// (rkt runs as a systemd service: the unit's cgroup is the pod's).
// Nothing is created until Create.
func NewPod(hs []Hierarchy, uuid string, inUnit bool) *Pod {
	p := &Pod{hs: hs, own: !inUnit}
	for _, h := range hs {
		if inUnit {
			p.paths = append(p.paths, h.Path)
		} else {
			p.paths = append(p.paths, path.Join(h.Path, "rkt-"+uuid))
		}
	}
	return p
}

// Subcgroup returns the pod's cgroup path for the pod's `subcgroup` file:
// its path in the name=systemd hierarchy, else in the unified one, else
// in the first hierarchy ("" if there is none).
func (p *Pod) Subcgroup() string {
	for i, h := range p.hs {
		if h.Has("name=systemd") {
			return p.paths[i]
		}
	}
	for i, h := range p.hs {
		if h.Unified {
			return p.paths[i]
		}
	}
	if len(p.paths) > 0 {
		return p.paths[0]
	}
	return ""
}

// Created returns the directories made so far, in creation order; removing
// them in reverse order (Remove) undoes Create and AddApp.
func (p *Pod) Created() []string { return append([]string(nil), p.created...) }

// mkdir creates the cgroup directory dir in hierarchy h. cpuset cgroups
// start with no CPUs and memory nodes on v1, so they get their parent's.
func (p *Pod) mkdir(h Hierarchy, dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil // left over by a process that died before cleaning up
	}
	if err != nil {
		return fmt.Errorf("create cgroup %s in the %s: %w", dir, h, err)
	}
	p.created = append(p.created, dir)
	if h.Has("cpuset") {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, _ := os.ReadFile(filepath.Join(dir, f))
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
			if err != nil {
				return fmt.Errorf("initialise cpuset cgroup %s: %w", dir, err)
			}
			if err := write(dir, f, strings.TrimSpace(string(parent))); err != nil {
				return err
			}
		}
	}
	return nil
}

// Create makes the pod's cgroup in every hierarchy (unless it is the
// caller's unit's), and, with stage1Leaf, its stage1 leaf, for the
// processes of stage1 that must leave the pod's cgroup (see Stage1Dirs).
func (p *Pod) Create(stage1Leaf bool) error {
	for i, h := range p.hs {
		if p.own {
			if err := p.mkdir(h, h.Dir(p.paths[i])); err != nil {
				return err
			}
		}
		if stage1Leaf {
			if err := p.mkdir(h, h.Dir(path.Join(p.paths[i], Stage1Leaf))); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stage1Dirs returns the stage1 leaf's directory in every hierarchy, in
// the order of the hierarchies given to NewPod.
func (p *Pod) Stage1Dirs() []string {
	dirs := make([]string, len(p.hs))
	for i, h := range p.hs {
		dirs[i] = h.Dir(path.Join(p.paths[i], Stage1Leaf))
	}
	return dirs
}

// Join moves pid (0: the caller's whole process) into the cgroup
// directory dir.
func Join(dir string, pid int) error {
	return write(dir, "cgroup.procs", strconv.Itoa(pid))
}

// AddApp makes the app's sub-cgroup in every hierarchy, applies l, and
// returns the directories (a process joins the app's cgroups by writing
// its pid to each <dir>/cgroup.procs, see Join). A limit whose controller
// is missing fails with ErrUnavailable, except an optional default.
func (p *Pod) AddApp(app string, l Limits) ([]string, error) {
	dirs := make([]string, len(p.hs))
	for i, h := range p.hs {
		dirs[i] = h.Dir(path.Join(p.paths[i], AppLeaf(app)))
	}
	// Find (and on v2 enable) every controller first, so that a limit
	// that cannot be applied fails before anything is created.
	targets := map[string]target{}
	for _, c := range l.Controllers() {
		t, err := p.controllerTarget(c)
		if err != nil {
			if l.optional(c) {
				continue
			}
			return nil, fmt.Errorf("app %s: %w", app, err)
		}
		targets[c] = t
	}
	for i, h := range p.hs {
		if err := p.mkdir(h, dirs[i]); err != nil {
			return nil, err
		}
	}
	for _, c := range l.Controllers() {
		t, ok := targets[c]
		if !ok {
			continue
		}
		settings := l.v1Settings(c)
		if t.v2 {
			settings = l.v2Settings(c)
		}
		for _, s := range settings {
			if err := write(dirs[t.i], s.file, s.value); err != nil {
				return nil, fmt.Errorf("app %s: %w", app, err)
			}
		}
	}
	return dirs, nil
}

// target is where a controller's settings go: hierarchy i, v1 or v2 files.
type target struct {
	i  int
	v2 bool
}

// controllerTarget finds where controller c is set: the v1 hierarchy that
// has it, else the unified hierarchy, where c is enabled for the pod's
// children (and for the pod itself, when the caller's cgroup allows).
func (p *Pod) controllerTarget(c string) (target, error) {
	for i, h := range p.hs {
		if !h.Unified && h.Has(c) {
			return target{i, false}, nil
		}
	}
	for i, h := range p.hs {
		if !h.Unified {
			continue
		}
		if err := p.enableV2(h, p.paths[i], c); err != nil {
			return target{}, err
		}
		return target{i, true}, nil
	}
	return target{}, fmt.Errorf("no %s controller: it is neither mounted as cgroup v1 nor a cgroup v2 controller here: %w", c, ErrUnavailable)
}

// controllerList reads a space-separated controller file.
func controllerList(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, f := range strings.Fields(string(data)) {
		m[strings.TrimLeft(f, "+")] = true
	}
	return m, nil
}

// enableV2 makes controller c available to the children of the cgroup at
// pod in the unified hierarchy h: c must be in the pod's parent's
// subtree_control (so the pod has it) and then in the pod's own.
func (p *Pod) enableV2(h Hierarchy, pod, c string) error {
	root, err := controllerList(filepath.Join(h.Mount, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read cgroup v2 controllers of %s: %w", h.Mount, err)
	}
	if !root[c] {
		return fmt.Errorf("no %s controller in the cgroup v2 hierarchy at %s (it may be bound to a v1 hierarchy that is not mounted): %w", c, h.Mount, ErrUnavailable)
	}
	for _, dir := range []string{path.Dir(pod), pod} {
		file := filepath.Join(h.Dir(dir), "cgroup.subtree_control")
		on, err := controllerList(file)
		if errors.Is(err, fs.ErrNotExist) {
			on, err = map[string]bool{}, nil // a fake cgroupfs in tests
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
		if on[c] {
			continue
		}
		if err := appendLine(file, "+"+c); err != nil {
			hint := ""
			if dir != pod {
				hint = " (cgroup v2 allows no processes in a cgroup that delegates controllers: run rkt from a systemd unit with Delegate=yes, or from a cgroup whose parent already enables " + c + ")"
			}
			return fmt.Errorf("enable the %s controller in %s%s: %w: %w", c, file, hint, err, ErrUnavailable)
		}
	}
	return nil
}

// appendLine writes line to file like `echo line >> file`: the kernel adds
// one controller per write, and a fake cgroupfs keeps every line.
func appendLine(file, line string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
