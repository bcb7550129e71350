package testutils

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// tarMode converts the permission and special bits of m to tar's mode.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// DirEntries walks the host directory dir into rootfs entries, in lexical
// order: dir/a/b becomes "rootfs/a/b". Regular files, directories and
// symlinks keep their modes; owners become 0:0 and times FixedTime. Any
// other file type (device, socket, fifo) is an error.
func DirEntries(dir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := "rootfs/" + filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := tar.Header{Name: name, Mode: tarMode(fi.Mode())}
		var body []byte
		switch {
		case fi.Mode().IsRegular():
			h.Typeflag = tar.TypeReg
			if body, err = os.ReadFile(path); err != nil {
				return err
			}
			h.Size = int64(len(body))
		case fi.IsDir():
			h.Typeflag = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported file type %s (only regular files, directories and symlinks are copied): remove it from the directory", path, fi.Mode().Type())
		}
		out = append(out, Entry{Header: h, Body: body})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read directory %s into image entries: %w", dir, err)
	}
	return out, nil
}

// The /etc files of the busybox entries.
const (
	etcPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
		"user:x:1000:1000:user:/home/user:/bin/sh\n"
	etcGroup = "root:x:0:\n" +
		"nogroup:x:65534:\n" +
		"user:x:1000:\n" +
		"extra:x:1001:\n"
)

var busybox struct {
	once    sync.Once
	entries []Entry
	err     error
}

// findBusybox returns the path of a static busybox binary.
func findBusybox() (string, error) {
	path := "/bin/busybox"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("busybox"); err != nil {
			return "", fmt.Errorf("no busybox binary: install busybox-static: %w", err)
		}
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("read busybox %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("busybox %s is dynamically linked and cannot run in an image: install busybox-static", path)
		}
	}
	return path, nil
}

func loadBusybox() ([]Entry, error) {
	path, err := findBusybox()
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := exec.CommandContext(ctx, path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets with %s --list: %w", path, err)
	}
	es := []Entry{
		Dir("bin", 0o755),
		File("bin/busybox", 0o755, string(bin)),
		Dir("etc", 0o755),
		File("etc/passwd", 0o644, etcPasswd),
		File("etc/group", 0o644, etcGroup),
		Dir("tmp", 0o1777),
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		es = append(es, Symlink("bin/"+applet, "busybox"))
	}
	return es, nil
}

// BusyboxEntries returns a small userland: /bin/busybox (the host's static
// busybox) with a /bin/<applet> symlink to it for every applet, /etc/passwd
// (root 0, nobody 65534, user 1000), /etc/group (root 0, nogroup 65534,
// user 1000, extra 1001, no members) and /tmp (1777). Loaded once per
// process; each call returns a fresh slice.
func BusyboxEntries() ([]Entry, error) {
	busybox.once.Do(func() { busybox.entries, busybox.err = loadBusybox() })
	if busybox.err != nil {
		return nil, busybox.err
	}
	return append([]Entry(nil), busybox.entries...), nil
}

// RepoRoot returns the root of the rkt checkout: the first directory at or
// above the working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod at or above the working directory: run from inside the rkt checkout")
		}
		dir = parent
	}
}

// goCommand returns the go tool: from PATH, else from $GOROOT or the
// standard /usr/local/go (sudo often drops /usr/local/go/bin from PATH).
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	root := os.Getenv("GOROOT")
	if root == "" {
		root = "/usr/local/go"
	}
	p := filepath.Join(root, "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no go command in PATH or %s: add Go to PATH: %w", p, err)
	}
	return p, nil
}

var built struct {
	mu   sync.Mutex
	bins map[string][]byte // the built binaries, by name, once built
}

// BuildInspect builds tests/inspect (static: CGO_ENABLED=0, -trimpath, no
// symbol tables) and
// puts it at dir/inspect, returning that path. The go build runs once per
// process; later calls copy the cached binary into their dir.
func BuildInspect(dir string) (string, error) { return BuildStatic(dir, "inspect") }

// BuildStatic builds the static test program ./tests/NAME, as BuildInspect
// builds inspect, to dir/NAME and returns that path.
func BuildStatic(dir, name string) (string, error) {
	return BuildPackage(dir, name, "./tests/"+name)
}

// BuildPackage builds the Go package pkg (a path in this module, or a
// package of a module go.mod pins, such as github.com/appc/spec/actool)
// statically, as BuildStatic does, to dir/name.
func BuildPackage(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	built.mu.Lock()
	defer built.mu.Unlock()
	if bin := built.bins[name]; bin != nil {
		if err := os.WriteFile(out, bin, 0o755); err != nil {
			return "", fmt.Errorf("copy %s binary: %w", name, err)
		}
		return out, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	goBin, err := goCommand()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s in %s: %w\n%s", name, root, err, stderr.Bytes())
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	if built.bins == nil {
		built.bins = map[string][]byte{}
	}
	built.bins[name] = bin
	return out, nil
}

// InspectEntries returns the entries of the inspect test image: /inspect
// (built into dir by BuildInspect) plus BusyboxEntries (shell, /etc/passwd,
// /etc/group, /tmp).
func InspectEntries(dir string) ([]Entry, error) {
	bin, err := BuildInspect(dir)
	if err != nil {
		return nil, err
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read inspect binary: %w", err)
	}
	es, err := BusyboxEntries()
	if err != nil {
		return nil, err
	}
	return append(es, File("inspect", 0o755, string(body))), nil
}

// ModuleDir returns the directory (in the module cache) of a module
// go.mod pins, such as github.com/appc/spec.
func ModuleDir(mod string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", mod)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find module %s: %w", mod, err)
	}
	return strings.TrimSpace(string(out)), nil
}
