// Package exitstatus is the format of an app's exit status file
// (stage1/rootfs/rkt/status/APP, docs/stage1-abi.md), shared by stage0,
// which reads it, and stage1, which writes it:
//
//	CODE\n            the app exited with CODE (128+N: killed by signal N)
//	CODE\nREASON\n    and why, when stage1 knows: "out of memory"
//
// stage0 creates each file empty at prepare time with its space
// allocated (Reserve) and stage1 writes it in place (Write), so that a pod
// that filled the file system of its data directory still records how
// its apps ended. Only os, strconv, strings and x/sys/unix are imported:
// the pod supervisor links this package and stays small.
package exitstatus

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/stage1abi"
)

// Dir holds the apps' status files, relative to the pod directory (the
// contract's, pkg/stage1abi).
const Dir = stage1abi.StatusDir

// ReasonOOM is the reason of an app the kernel's OOM killer killed.
const ReasonOOM = "out of memory"

// reserved is the space Reserve allocates: one block, far more than a
// code and a reason need.
const reserved = 512

// Reserve creates path empty, with space allocated for Write (without
// changing its size: an empty file is an app that has not exited). A file
// system without fallocate gets the empty file only.
func Reserve(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, reserved)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		err = nil
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: path, Err: err}
	}
	return nil
}

// Write records code and reason ("" for none) in path, writing in place
// (no truncation, which would free what Reserve allocated).
func Write(path string, code int, reason string) error {
	data := strconv.Itoa(code) + "\n"
	if reason != "" {
		data += strings.ReplaceAll(reason, "\n", " ") + "\n"
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		f.Close()
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() > int64(len(data)) {
		err = f.Truncate(int64(len(data)))
		if err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// Parse reads a status file's content; ok is false for an app that has
// not exited (empty file) or a file that is not a status.
func Parse(data string) (code int, reason string, ok bool) {
	first, rest, _ := strings.Cut(data, "\n")
	code, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, "", false
	}
	reason, _, _ = strings.Cut(rest, "\n")
	return code, strings.TrimSpace(reason), true
}

// Read reads path (see Parse).
func Read(path string) (code int, reason string, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, "", false
	}
	return Parse(string(data))
}

// OOMKills reads the oom_kill counter of a memory cgroup's event file:
// memory.events (cgroup v2) or memory.oom_control (v1, Linux 4.13 and
// later). It returns 0 when the file or the counter is missing.
func OOMKills(file string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == "oom_kill" {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// OOMEventFile is the file OOMKills reads in a memory cgroup directory.
func OOMEventFile(dir string, unified bool) string {
	if unified {
		return dir + "/memory.events"
	}
	return dir + "/memory.oom_control"
}

// ReasonPodKilled is the reason of an app that died with its pod's
// process 1 (rkt stop --force SIGKILLs it), which recorded no status.
const ReasonPodKilled = "killed with the pod (SIGKILL)"

// FillKilled records 137 (SIGKILL) for every app in the status directory
// dir that was started (its APP-started marker exists) and has no status:
// called once the pod's process 1 is gone, such an app was killed by the
// kernel with the pod's PID namespace. It returns the apps it recorded.
func FillKilled(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var filled []string
	for _, e := range ents {
		app, ok := strings.CutSuffix(e.Name(), "-started")
		if !ok || app == "" {
			continue
		}
		p := dir + "/" + app
		if _, _, ok := Read(p); ok {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			continue // not an app's marker
		}
		if Write(p, 128+int(unix.SIGKILL), ReasonPodKilled) == nil {
			filled = append(filled, app)
		}
	}
	return filled
}
