package stage2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// lookPath finds file in the PATH of env (in the current root) unless it
// contains a slash.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &SetupError{Code: ExitNotFound, Err: fmt.Errorf("exec %s: not found in the app's PATH (%s)", file, path)}
}

// explainExec turns a failed execve of path into a message saying why and
// the exit code for it: 127 when the file or its interpreter is missing,
// 126 when it cannot be executed.
func explainExec(path string, err error) error {
	notFound := func(format string, args ...any) error {
		return &SetupError{Code: ExitNotFound, Err: fmt.Errorf(format, args...)}
	}
	notExec := func(format string, args ...any) error {
		return &SetupError{Code: ExitNotExecutable, Err: fmt.Errorf(format, args...)}
	}
	fi, serr := os.Stat(path)
	switch {
	case errors.Is(err, syscall.ENOENT) && serr != nil:
		return notFound("exec %s: no such file in the app's image: %w", path, err)
	case errors.Is(err, syscall.ENOENT):
		if interp, kind := interpreter(path); interp != "" {
			if _, ierr := os.Stat(interp); ierr != nil {
				return notFound("exec %s: its %s %s is missing from the app's image: %w", path, kind, interp, err)
			}
		}
		return notFound("exec %s: %w (a file it needs is missing)", path, err)
	case errors.Is(err, syscall.EACCES) && serr == nil && fi.IsDir():
		return notExec("exec %s: it is a directory: %w", path, err)
	case errors.Is(err, syscall.EACCES) && serr == nil && fi.Mode().Perm()&0o111 == 0:
		return notExec("exec %s: not executable (mode %#o): %w", path, fi.Mode().Perm(), err)
	case errors.Is(err, syscall.EACCES):
		if interp, kind := interpreter(path); interp != "" {
			if ifi, ierr := os.Stat(interp); ierr == nil && ifi.Mode().Perm()&0o111 == 0 {
				return notExec("exec %s: its %s %s is not executable: %w", path, kind, interp, err)
			}
		}
		return notExec("exec %s: permission denied (not executable by the app's user, or on a noexec mount): %w", path, err)
	case errors.Is(err, syscall.ENOEXEC):
		return notExec("exec %s: not a binary for this machine and no #! line: %w", path, err)
	}
	return notExec("exec %s: %w", path, err)
}

// interpreter returns the #! interpreter or ELF dynamic loader of path.
func interpreter(path string) (string, string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := f.Read(head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("#!")) {
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) > 0 {
			return fields[0], "interpreter (from its #! line)"
		}
		return "", ""
	}
	if interp := elfInterp(f); interp != "" {
		return interp, "dynamic loader (ELF interpreter)"
	}
	return "", ""
}

// elfInterp returns the PT_INTERP path of a 64-bit little-endian ELF file
// ("" if it has none or is not one). A few lines instead of debug/elf,
// whose package initialization (zstd tables) costs every stage1 exec
// about a millisecond.
func elfInterp(f *os.File) string {
	var eh [64]byte
	if _, err := f.ReadAt(eh[:], 0); err != nil || !bytes.Equal(eh[:4], []byte("\x7fELF")) || eh[4] != 2 || eh[5] != 1 {
		return ""
	}
	le := binary.LittleEndian
	phoff, phentsize, phnum := int64(le.Uint64(eh[32:])), int64(le.Uint16(eh[54:])), int(le.Uint16(eh[56:]))
	if phentsize < 56 || phnum > 256 {
		return ""
	}
	ph := make([]byte, 56)
	for i := 0; i < phnum; i++ {
		if _, err := f.ReadAt(ph, phoff+int64(i)*phentsize); err != nil {
			return ""
		}
		if le.Uint32(ph[0:]) != 3 { // PT_INTERP
			continue
		}
		off, size := int64(le.Uint64(ph[8:])), le.Uint64(ph[32:])
		if size == 0 || size > 4096 {
			return ""
		}
		b := make([]byte, size)
		if _, err := f.ReadAt(b, off); err != nil {
			return ""
		}
		return string(bytes.TrimRight(b, "\x00"))
	}
	return ""
}

// checkExecutable catches the common failures before the point of no
// return (seccomp, capabilities gone), with the same messages as a failed
// execve.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return explainExec(path, syscall.ENOENT)
		}
		return explainExec(path, errors.Unwrap(err))
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return explainExec(path, syscall.EACCES)
	}
	if interp, _ := interpreter(path); interp != "" {
		if _, err := os.Stat(interp); err != nil {
			return explainExec(path, syscall.ENOENT)
		}
	}
	return nil
}

// capLast returns the highest capability number of the running kernel.
func capLast() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		var n int
		if _, err := fmt.Sscanf(string(b), "%d", &n); err == nil {
			return n
		}
	}
	return 40
}

// dropBoundingSet removes every capability not in keep from the calling
// thread's bounding set (nil keep: nothing is dropped).
func dropBoundingSet(keep []int) error {
	if keep == nil {
		return nil
	}
	k := map[int]bool{}
	for _, c := range keep {
		k[c] = true
	}
	last := capLast() // one read of /proc, not one per capability
	for c := 0; c <= last; c++ {
		if k[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return setupErr("drop %s from the bounding set: %w", CapName(c), err)
		}
	}
	return nil
}

// clearInheritable empties the inheritable and ambient sets, so that exec
// gives the app exactly its bounding set (root) or nothing (other users).
func clearInheritable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return setupErr("read capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return setupErr("clear inheritable capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return setupErr("clear ambient capabilities: %w", err)
	}
	return nil
}
