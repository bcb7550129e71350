// Package stage1test is the harness of stage1's functional tests (run as
// root): it builds a stage1 flavor's binary, makes an app root from the
// inspect test app and busybox, writes pod directories exactly as stage0
// does (pod manifest, appsinfo, the pod lock handed over in RKT_LOCK_FD),
// runs the entrypoints, and cleans up after each test even on failure:
// processes it started are killed by PID, the pod's cgroups removed and
// everything mounted below the test's directory unmounted.
package stage1test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/mounts"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/stage1/gc"
	"github.com/rkt/rkt/tests/testutils"
)

// Entrypoints are the names a stage1 binary is linked as.
var Entrypoints = []string{"init", "enter", "gc", "stop"}

// extraBinaries are the binaries a flavor has besides its main one, by
// flavor package: file name in the stage1 rootfs -> package. The
// default flavor's run entrypoint is its small binary, not a link.
var extraBinaries = map[string]map[string]string{
	"./stage1/default": {"init": "./stage1/default/init", "stage2": "./stage1/default/launcher"},
}

// Build compiles the stage1 flavor package pkg (e.g. ./stage1/default,
// relative to the repository root) statically into dir as the file
// stage1, links the entrypoint names to it, and builds the flavor's other
// binaries beside it, as the stage1 image holds them. It returns dir.
func Build(pkg, dir string) (string, error) {
	root, err := testutils.RepoRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := func(out, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
		if _, err := exec.LookPath("go"); err != nil {
			cmd.Path = "/usr/local/go/bin/go"
		}
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", pkg, err, out)
		}
		return nil
	}
	bin := filepath.Join(dir, "stage1")
	if err := build(bin, pkg); err != nil {
		return "", err
	}
	extra := extraBinaries[pkg]
	for name, p := range extra {
		if err := build(filepath.Join(dir, name), p); err != nil {
			return "", err
		}
	}
	for _, ep := range Entrypoints {
		if _, ok := extra[ep]; ok {
			continue
		}
		if err := os.Link(bin, filepath.Join(dir, ep)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// WriteEntries materializes image entries ("rootfs/..." names) in dir,
// which becomes the image's rootfs.
func WriteEntries(dir string, entries []testutils.Entry) error {
	for _, e := range entries {
		name := strings.TrimPrefix(e.Header.Name, "rootfs")
		p := filepath.Join(dir, filepath.FromSlash(name))
		mode := os.FileMode(e.Header.Mode & 0o777)
		switch e.Header.Typeflag {
		case '5': // dir
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if e.Header.Mode&0o1000 != 0 {
				mode |= os.ModeSticky
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		case '2': // symlink
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Symlink(e.Header.Linkname, p); err != nil {
				return err
			}
		case '0', 0:
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, e.Body, mode); err != nil {
				return err
			}
			os.Chmod(p, mode)
		default:
			return fmt.Errorf("entry %s: type %c not supported here", e.Header.Name, e.Header.Typeflag)
		}
	}
	return nil
}

// InspectRootfs makes an app root at dir with busybox, /etc/passwd,
// /etc/group and /inspect.
func InspectRootfs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	build := filepath.Join(filepath.Dir(dir), "inspect-build")
	if err := os.MkdirAll(build, 0o755); err != nil {
		return err
	}
	es, err := testutils.InspectEntries(build)
	if err != nil {
		return err
	}
	return WriteEntries(dir, es)
}

// App describes one app of a test pod.
type App struct {
	Name              string
	Exec              []string
	User, Group       string
	SupplementaryGIDs []int
	WorkingDir        string
	Env               map[string]string
	// Isolators are raw appc isolators ({"name": ..., "value": ...}).
	Isolators      []string
	Mounts         []schema.Mount
	ReadOnlyRootFS bool
	// PreStart and PostStop are the app's event handlers' commands (nil:
	// none).
	PreStart, PostStop []string
	// Annotations are the pod manifest's app annotations;
	// ImageAnnotations the image manifest's.
	Annotations      map[string]string
	ImageAnnotations map[string]string
	// Rootfs is the image's tree (the overlay lower dir).
	Rootfs string
	// LowerDirs, when set, are the image's trees instead, top first (a
	// layered image's layers), as stage0 writes them.
	LowerDirs []string
}

// Spec describes a test pod.
type Spec struct {
	Apps        []App
	Volumes     []types.Volume
	Annotations map[string]string
	// Ports are the pod manifest's forwarded ports, as stage0 writes
	// them (pod port filled in).
	Ports []types.ExposedPort
}

// Pod is a pod directory under a test's temporary directory.
type Pod struct {
	UUID, Dir string
	Bin       string // directory of the entrypoints
	// DataDir is the pod's rkt data directory (Dir is
	// DataDir/pods/run/UUID); LocalConfig an empty local configuration
	// directory, with an empty net.d, to give stage1 --local-config.
	DataDir, LocalConfig string
	t                    testing.TB
	lock                 *os.File

	mu    sync.Mutex
	procs []*exec.Cmd
}

// Result is how an entrypoint ended.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func annotations(m map[string]string) types.Annotations {
	var a types.Annotations
	for k, v := range m {
		a.Set(types.ACIdentifier(k), v)
	}
	return a
}

// NewPod writes the pod directory for spec below a fresh temporary
// directory, locked like stage0 leaves it, and registers the cleanup.
func NewPod(t testing.TB, bin string, spec Spec) *Pod {
	t.Helper()
	base, err := os.MkdirTemp("", "rkt-stage1-test-")
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(base); err == nil {
		base = real
	}
	p := &Pod{UUID: pod.NewUUID(), Bin: bin, t: t, DataDir: base, LocalConfig: filepath.Join(base, "local")}
	p.Dir = filepath.Join(base, "pods", "run", p.UUID)
	t.Cleanup(func() { p.cleanup(base) })
	for _, d := range []string{p.Dir, filepath.Join(p.LocalConfig, "net.d")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	pm := schema.BlankPodManifest()
	pm.Volumes = spec.Volumes
	pm.Ports = spec.Ports
	pm.Annotations = annotations(spec.Annotations)
	for i, a := range spec.Apps {
		name := a.Name
		if name == "" {
			name = fmt.Sprintf("app%d", i)
		}
		app := &types.App{Exec: a.Exec, User: a.User, Group: a.Group, WorkingDirectory: a.WorkingDir, SupplementaryGIDs: a.SupplementaryGIDs}
		if app.User == "" {
			app.User = "0"
		}
		if app.Group == "" {
			app.Group = "0"
		}
		for k, v := range a.Env {
			app.Environment.Set(k, v)
		}
		if a.PreStart != nil {
			app.EventHandlers = append(app.EventHandlers, types.EventHandler{Name: "pre-start", Exec: a.PreStart})
		}
		if a.PostStop != nil {
			app.EventHandlers = append(app.EventHandlers, types.EventHandler{Name: "post-stop", Exec: a.PostStop})
		}
		for _, raw := range a.Isolators {
			var iso types.Isolator
			if err := json.Unmarshal([]byte(raw), &iso); err != nil {
				t.Fatalf("isolator %s: %v", raw, err)
			}
			app.Isolators = append(app.Isolators, iso)
		}
		hash, _ := types.NewHash("sha512-" + strings.Repeat("0", 64))
		pm.Apps = append(pm.Apps, schema.RuntimeApp{
			Name: types.ACName(name), Image: schema.RuntimeImage{ID: *hash}, App: app,
			Mounts: a.Mounts, ReadOnlyRootFS: a.ReadOnlyRootFS, Annotations: annotations(a.Annotations),
		})
		im := schema.BlankImageManifest()
		im.Name = types.ACIdentifier("example.com/" + name)
		im.Annotations = annotations(a.ImageAnnotations)
		imData, err := json.Marshal(im)
		if err != nil {
			t.Fatal(err)
		}
		info := filepath.Join(p.Dir, "appsinfo", name)
		if err := os.MkdirAll(info, 0o750); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(info, "manifest"), string(imData))
		lowers := a.Rootfs + "\n"
		if len(a.LowerDirs) > 0 {
			lowers = strings.Join(a.LowerDirs, "\n") + "\n"
		}
		write(t, filepath.Join(info, "lowerdirs"), lowers)
	}
	data, err := json.Marshal(pm)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(p.Dir, "pod"), string(data))
	// The entrypoints' directory stands for the stage1 image's rootfs.
	if err := os.MkdirAll(filepath.Join(p.Dir, "stage1"), 0o750); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(p.Dir, "stage1", "rootfs-path"), bin+"\n")
	if p.lock, err = os.Open(p.Dir); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(p.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

// cleanup kills what the test started, runs gc, unmounts and removes.
func (p *Pod) cleanup(base string) {
	p.mu.Lock()
	for _, c := range p.procs {
		if c.Process != nil && c.ProcessState == nil {
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			c.Process.Kill()
		}
	}
	p.mu.Unlock()
	// Apps that outlived their stage1 (fly pods killed abruptly).
	pids, _ := filepath.Glob(filepath.Join(p.Dir, "stage1/rootfs/rkt/app-pid/*"))
	for _, f := range pids {
		data, _ := os.ReadFile(f)
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 1 {
			continue
		}
		if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err == nil && strings.HasPrefix(root, p.Dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if p.lock != nil {
		p.lock.Close()
	}
	veths := HostVeths(p.Dir)
	_, err1 := os.Stat(filepath.Join(p.Dir, "net-info.json"))
	_, err2 := os.Stat(filepath.Join(base, "networks"))
	hadNet := err1 == nil || err2 == nil
	if err := gc.Collect(context.Background(), p.Dir, gc.Options{UUID: p.UUID, LocalConfig: p.LocalConfig}); err != nil {
		p.t.Errorf("clean up pod %s: %v", p.UUID, err)
	}
	// gc is code under test: make sure nothing of the pod's network is
	// left on the host whatever it did.
	if hadNet {
		if left := WaitNoNetTraces(p.UUID, base, veths, 2*time.Second); len(left) > 0 {
			p.t.Errorf("gc left the network of pod %s (removed by the harness now):\n%s", p.UUID, strings.Join(left, "\n"))
			if err := removeFirewallTraces(p.UUID); err != nil {
				p.t.Errorf("clean up pod %s: %v", p.UUID, err)
			}
			for _, v := range veths {
				exec.Command("ip", "link", "del", v).Run()
			}
		}
	}
	if err := gc.Unmount(base, func(string, ...any) {}); err != nil {
		p.t.Errorf("clean up %s: %v", base, err)
	}
	if err := os.RemoveAll(base); err != nil {
		p.t.Errorf("clean up %s: %v", base, err)
	}
}

// Command returns an unstarted entrypoint command running in the pod
// directory, with the pod lock as fd 3 (RKT_LOCK_FD=3), in its own process
// group. The harness kills it at cleanup if it still runs.
func (p *Pod) Command(ctx context.Context, entrypoint string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, filepath.Join(p.Bin, entrypoint), args...)
	c.Dir = p.Dir
	c.Env = append(os.Environ(), "RKT_LOCK_FD=3")
	c.ExtraFiles = []*os.File{p.lock}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	p.mu.Lock()
	p.procs = append(p.procs, c)
	p.mu.Unlock()
	return c
}

// CommandInCgroups is Command with the entrypoint started in the cgroup
// directories dirs (a shell moves itself there, then execs it), e.g. to
// look like a systemd service.
func (p *Pod) CommandInCgroups(ctx context.Context, dirs []string, entrypoint string, args ...string) *exec.Cmd {
	c := p.Command(ctx, entrypoint, args...)
	script := `for d in $CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 254; done; exec "$@"`
	c.Args = append([]string{"/bin/sh", "-c", script, "sh", c.Path}, args...)
	c.Path = "/bin/sh"
	c.Env = append(c.Env, "CGROUPS="+strings.Join(dirs, " "))
	return c
}

// Run runs an entrypoint to completion (60 s at most) and returns its
// output and exit code.
func (p *Pod) Run(entrypoint string, args ...string) Result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, entrypoint, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	default:
		p.t.Fatalf("%s %v: %v", entrypoint, args, err)
	}
	return r
}

// RunPod runs init with args (the UUID is appended).
func (p *Pod) RunPod(args ...string) Result {
	p.t.Helper()
	return p.Run("init", append(args, p.UUID)...)
}

// Status returns an app's recorded exit status.
func (p *Pod) Status(app string) (int, bool) {
	n, _, ok := exitstatus.Read(filepath.Join(p.Dir, exitstatus.Dir, app))
	return n, ok
}

// ReadFile reads a file of the pod directory.
func (p *Pod) ReadFile(rel string) string {
	data, _ := os.ReadFile(filepath.Join(p.Dir, rel))
	return string(data)
}

// WaitFile waits up to timeout for a file of the pod directory to exist.
func (p *Pod) WaitFile(rel string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Lstat(filepath.Join(p.Dir, rel)); err == nil {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// Value returns the value of the first "key: value" line of out.
func Value(out, key string) (string, bool) {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+": "); ok {
			return v, true
		}
	}
	return "", false
}

// MountsBelow lists the host's mount points at or below dir.
func MountsBelow(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mounts.Below(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
