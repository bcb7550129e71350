package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// printer writes "key: value" lines and remembers the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) raw(s string) error {
	if p.err == nil {
		_, p.err = io.WriteString(p.w, s)
	}
	return nil
}

func (p *printer) kv(key, value string) error {
	return p.raw(key + ": " + value + "\n")
}

func (p *printer) env(names []string) error {
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			p.raw(name + "=" + v + "\n")
		} else {
			p.raw(name + " is unset\n")
		}
	}
	return nil
}

func (p *printer) envAll() error {
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		p.raw(e + "\n")
	}
	return nil
}

func (p *printer) user() error {
	p.kv("uid", strconv.Itoa(os.Getuid()))
	p.kv("gid", strconv.Itoa(os.Getgid()))
	p.kv("euid", strconv.Itoa(os.Geteuid()))
	return p.kv("egid", strconv.Itoa(os.Getegid()))
}

func (p *printer) groups() error {
	gs, err := os.Getgroups()
	if err != nil {
		return fmt.Errorf("get supplementary groups: %w", err)
	}
	sort.Ints(gs)
	strs := make([]string, len(gs))
	for i, g := range gs {
		strs[i] = strconv.Itoa(g)
	}
	return p.kv("groups", strings.Join(strs, " "))
}

// statusField returns the value of "Key:" in /proc/<pid>/status; ok is
// false when the kernel does not have that line.
func statusField(pid, key string) (value string, ok bool, err error) {
	path := filepath.Join("/proc", pid, "status")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if found && k == key {
			return strings.TrimSpace(v), true, nil
		}
	}
	return "", false, nil
}

func (p *printer) statusLine(pid, key string) error {
	v, ok, err := statusField(pid, key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no %s line in /proc/%s/status: the kernel is too old for this check", key, pid)
	}
	return p.kv(key, v)
}

func (p *printer) caps(pid int) error {
	id := "self"
	if pid > 0 {
		id = strconv.Itoa(pid)
	}
	for _, key := range []string{"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"} {
		v, ok, err := statusField(id, key)
		if err != nil {
			return err
		}
		if !ok {
			continue // CapAmb needs Linux 4.3
		}
		p.kv(key, v)
	}
	return nil
}

func (p *printer) hostname() error {
	h, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("get hostname: %w", err)
	}
	return p.kv("hostname", h)
}

func (p *printer) cwd() error {
	d, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("get working directory: %w", err)
	}
	return p.kv("cwd", d)
}

func (p *printer) mounts() error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	return p.raw(string(data))
}

func (p *printer) namespace(ns string) error {
	target, err := os.Readlink("/proc/self/ns/" + ns)
	if err != nil {
		return fmt.Errorf("read %s namespace: %w", ns, err)
	}
	return p.kv(ns+"ns", target)
}

func (p *printer) noNewPrivs() error {
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_NO_NEW_PRIVS): %w", err)
	}
	return p.kv("no_new_privs", strconv.Itoa(v))
}

func (p *printer) oomScoreAdj() error {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return fmt.Errorf("read oom_score_adj: %w", err)
	}
	return p.kv("oom_score_adj", strings.TrimSpace(string(data)))
}
