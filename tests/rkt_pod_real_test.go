package tests

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/stage1/stage1test"
	"github.com/rkt/rkt/tests/testutils"
)

// The tests of this file and of rkt_run_test.go, rkt_isolation_test.go and
// rkt_systemd_test.go run pods with the real default stage1
// (build/bin/stage1-default.aci, which rkt finds beside its binary) and
// the inspect test app. Build both first: make all.

// realStage1 is the default stage1 image rkt finds beside its binary.
const realStage1 = "stage1-default.aci"

// realImageName is the name of the inspect image of newRealEnv.
const realImageName = "rkt.dev/inspect-real"

// realApp is the app name rkt derives from realImageName.
const realApp = "inspect-real"

// hostNet is the network of every pod unless a test says otherwise (a
// later --net flag wins): these tests do not depend on CNI networking.
const hostNet = "--net=host"

// realEnv is a functional-test context for pods run by the real default
// stage1. It reuses the pod helpers of stub_test.go (listPods, podStatus,
// podDirPhases, requireNoPods) but not the stub stage1.
type realEnv struct {
	*podEnv
	t   *testing.T
	dir string // scratch directory for images and files
	img string // the inspect image, exec /inspect
}

// newRealEnv needs root and the built stage1 images. When the test ends,
// its background pods are killed and `rkt gc --grace-period=0s` collects
// every pod; cgroups left behind fail the test and are removed; then the
// host's shared network state is restored.
func newRealEnv(t *testing.T) *realEnv {
	t.Helper()
	testutils.RequireRoot(t)
	c := testutils.NewRktCtx(t)
	requireStage1Beside(t, c.Bin, realStage1)
	e := &realEnv{podEnv: &podEnv{RktCtx: c, t: t}, t: t, dir: t.TempDir()}
	// The host's shared network state (IP forwarding, rkt's isolation and
	// masquerading rules) goes back to what it was once the pods are
	// collected: cleanups run last registered first.
	hostNet := stage1test.SnapshotHostNet()
	t.Cleanup(hostNet.Restore)
	t.Cleanup(e.collect)
	e.img = e.writeImage("inspect.aci", e.inspectACI(realImageName))
	return e
}

// requireStage1Beside fails the test unless the stage1 image name lies
// beside the rkt binary.
func requireStage1Beside(t testing.TB, bin, name string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), name)); err != nil {
		t.Fatalf("no %s beside %s: run `make all` first: %v", name, bin, err)
	}
}

// inspectACI is an image named name (version 1.0.0) holding the inspect
// app and busybox, running exec (default /inspect).
func (e *realEnv) inspectACI(name string, exec ...string) testutils.ACI {
	e.t.Helper()
	es, err := testutils.InspectEntries(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(exec) == 0 {
		exec = []string{"/inspect"}
	}
	return testutils.ACI{
		Image:       testutils.Image{Name: name, Labels: map[string]string{"version": "1.0.0"}, Exec: exec},
		Entries:     es,
		Compression: testutils.CompressionNone,
	}
}

// writeImage writes a into the scratch directory and returns its path.
func (e *realEnv) writeImage(file string, a testutils.ACI) string {
	e.t.Helper()
	return writeACI(e.t, e.dir, file, a)
}

// run runs `rkt --insecure-options=image run --net=host ARGS...` to
// completion.
func (e *realEnv) run(args ...string) testutils.Result {
	e.t.Helper()
	return e.Run(append([]string{insecureImage, "run", hostNet}, args...)...)
}

// runOK is run that fails the test unless rkt exits 0; it returns stdout.
func (e *realEnv) runOK(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.Exit != 0 {
		e.t.Fatalf("%s", describeResult(append([]string{insecureImage, "run", hostNet}, args...), r))
	}
	return r.Stdout
}

// runUUID is run with --uuid-file-save; it returns the pod's UUID too.
func (e *realEnv) runUUID(args ...string) (string, testutils.Result) {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "uuid")
	r := e.run(append([]string{"--uuid-file-save=" + f}, args...)...)
	data, err := os.ReadFile(f)
	if err != nil {
		e.t.Fatalf("--uuid-file-save wrote nothing: %v\n%s", err, describeResult(args, r))
	}
	return mustUUID(e.t, string(data)), r
}

// shExec are the app flags that run script with the image's busybox sh.
// It ends the app's arguments ("---"), so another image may follow.
func shExec(script string) []string {
	return []string{"--exec=/bin/sh", "--", "-c", script, "---"}
}

// inspectValue returns the value of the first "key: value" line of out.
func inspectValue(out, key string) (string, bool) {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, key+": "); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// wantValue fails the test unless out has the line "key: want".
func wantValue(t testing.TB, out, key, want string) {
	t.Helper()
	if v, ok := inspectValue(out, key); !ok || v != want {
		t.Errorf("%s: got %q (present %v), want %q\noutput:\n%s", key, v, ok, want, out)
	}
}

// prefixApp is a shell pipe stage that prefixes each line with the app's
// name, so that the output of several apps can be told apart.
const prefixApp = ` | sed "s/^/$AC_APP_NAME| /"`

// byApp splits the output of apps using prefixApp; the "NAME: " that
// rkt itself puts before each line of a pod of several apps is taken off
// (and is enough without prefixApp).
func byApp(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if app, rest, ok := strings.Cut(line, ": "); ok && appNameRe.MatchString(app) {
			if r, ok := strings.CutPrefix(rest, app+"| "); ok {
				rest = r
			}
			m[app] += rest + "\n"
			continue
		}
		if app, rest, ok := strings.Cut(line, "| "); ok {
			m[app] += rest + "\n"
		}
	}
	return m
}

var appNameRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// podDir is the directory of a pod in run/ (running or exited).
func (e *realEnv) podDir(uuid string) string {
	return filepath.Join(e.podsPhaseDir("run"), uuid)
}

// podFile reads a file of a pod in run/, trimmed.
func (e *realEnv) podFile(uuid, rel string) string {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.podDir(uuid), rel))
	if err != nil {
		e.t.Fatalf("pod %s: %v", uuid, err)
	}
	return strings.TrimSpace(string(data))
}

// podPid reads a decimal pid from a pod file.
func (e *realEnv) podPid(uuid, rel string) int {
	e.t.Helper()
	s := e.podFile(uuid, rel)
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		e.t.Fatalf("pod %s: %s holds %q, not a pid", uuid, rel, s)
	}
	return n
}

// start starts `rkt --insecure-options=image run --net=host ARGS...` in the
// background, with env added to rkt's environment, and returns once the
// pod exists (stage1 wrote its pid file). Its process group is killed when
// the test ends, if it still runs.
func (e *realEnv) start(env []string, args ...string) *bgPod {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "uuid")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := e.Cmd(ctx, append([]string{insecureImage, "run", hostNet, "--uuid-file-save=" + f}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return e.startCmd(cmd, cancel, f)
}

// startCmd starts cmd, which runs rkt run with --uuid-file-save=uuidFile
// and is killed by cancel, and waits until the pod's pid file exists.
func (e *realEnv) startCmd(cmd *exec.Cmd, cancel context.CancelFunc, uuidFile string) *bgPod {
	e.t.Helper()
	bp := &bgPod{done: make(chan struct{}), cmd: cmd}
	bp.cmd.Stdout, bp.cmd.Stderr = &bp.out, &bp.errb
	if err := bp.cmd.Start(); err != nil {
		cancel()
		e.t.Fatalf("start rkt run: %v", err)
	}
	go func() {
		bp.err = bp.cmd.Wait()
		close(bp.done)
	}()
	e.t.Cleanup(func() {
		cancel() // kills the process group if still running
		<-bp.done
	})
	e.waitFor(bp, "the pod's pid file", func() bool {
		data, err := os.ReadFile(uuidFile)
		if err != nil || !podUUIDRe.MatchString(strings.TrimSpace(string(data))) {
			return false
		}
		bp.UUID = strings.TrimSpace(string(data))
		_, err = os.Stat(filepath.Join(e.podDir(bp.UUID), "pid"))
		return err == nil
	})
	return bp
}

// startReady is start without extra environment that also waits until
// stage1 marked every app started (supervisor-status links to ready).
func (e *realEnv) startReady(args ...string) *bgPod {
	e.t.Helper()
	bp := e.start(nil, args...)
	e.waitReady(bp)
	return bp
}

// waitReady waits until stage1 marked every app of the pod started.
func (e *realEnv) waitReady(bp *bgPod) {
	e.t.Helper()
	link := filepath.Join(e.podDir(bp.UUID), "stage1", "rootfs", "rkt", "supervisor-status")
	e.waitFor(bp, "supervisor-status -> ready", func() bool {
		target, err := os.Readlink(link)
		return err == nil && target == "ready"
	})
}

// startSleeper starts a pod of the inspect image whose app sleeps for a
// minute (with more inspect flags), and waits until the app runs its own
// code: its SIGTERM handler is installed once it wrote /started.
func (e *realEnv) startSleeper(appFlags ...string) *bgPod {
	e.t.Helper()
	args := []string{e.img, "--exec=/inspect", "--", "--write-file=/started", "--content=1", "--sleep=60s"}
	bp := e.startReady(append(args, appFlags...)...)
	e.waitAppFile(bp, realApp, "started")
	return bp
}

// waitAppFile waits until the app wrote the file name (relative to its
// root) into its overlay upper layer.
func (e *realEnv) waitAppFile(bp *bgPod, app, name string) {
	e.t.Helper()
	p := filepath.Join(e.podDir(bp.UUID), "overlay", app, "upper", name)
	e.waitFor(bp, "/"+name+" written by app "+app, func() bool {
		_, err := os.Stat(p)
		return err == nil
	})
}

// waitFor polls cond for up to 20 s; the test fails if rkt run ends first
// or time runs out.
func (e *realEnv) waitFor(bp *bgPod, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		select {
		case <-bp.done:
			e.t.Fatalf("rkt run exited (%v) before %s\nstdout: %s\nstderr: %s", bp.err, what, bp.out.String(), bp.errb.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			bp.cmd.Cancel()
			<-bp.done // the buffers are not written to any more
			e.t.Fatalf("no %s after 20s\nstdout: %s\nstderr: %s", what, bp.out.String(), bp.errb.String())
		}
	}
}

// collect runs when the test ends, after the cleanups of the background
// pods (which kill rkt run): it kills what may be left of the context's
// pods, runs `rkt gc --grace-period=0s`, and checks that no cgroup of the
// pods is left, removing any it finds.
func (e *realEnv) collect() {
	e.killLeftovers()
	var uuids []string
	for _, ph := range podPhases {
		ents, _ := os.ReadDir(e.podsPhaseDir(ph))
		for _, ent := range ents {
			uuids = append(uuids, ent.Name())
		}
	}
	if len(uuids) == 0 {
		return
	}
	if r := e.Run("gc", "--grace-period=0s"); r.Exit != 0 {
		e.t.Errorf("cleanup: %s", describeResult([]string{"gc", "--grace-period=0s"}, r))
	}
	left := podCgroupsLeft(uuids)
	for _, d := range left {
		e.t.Errorf("cleanup: cgroup %s left after rkt gc", d)
	}
	removeCgroupTrees(e.t, left)
}

// killLeftovers SIGKILLs the process 1 of every pod of the context that
// still has one (its pid file names a live process with the start time
// recorded beside it, as stage1 stop checks), which ends the pod's other
// processes.
func (e *realEnv) killLeftovers() {
	ents, _ := os.ReadDir(e.podsPhaseDir("run"))
	procs := map[int]string{}
	for _, ent := range ents {
		p, err := proc.Load(filepath.Join(e.podsPhaseDir("run"), ent.Name(), "pid"))
		if err != nil {
			continue
		}
		if h, err := p.Open(); err == nil {
			e.t.Logf("cleanup: killing pod %s (pid %d)", ent.Name(), p.Pid)
			procs[p.Pid] = procStart(p.Pid)
			h.Signal(syscall.SIGKILL)
			h.Close()
		}
	}
	waitProcsGone(e.t, procs, 5*time.Second)
}

// podCgroupsLeft finds the cgroup directories named rkt-<uuid> for any of
// uuids anywhere in the first levels of /sys/fs/cgroup.
func podCgroupsLeft(uuids []string) []string {
	want := map[string]bool{}
	for _, u := range uuids {
		want["rkt-"+u] = true
	}
	var found []string
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, ent := range ents {
			if !ent.IsDir() {
				continue
			}
			p := filepath.Join(dir, ent.Name())
			if want[ent.Name()] {
				found = append(found, p)
				continue
			}
			if depth < 6 {
				walk(p, depth+1)
			}
		}
	}
	walk("/sys/fs/cgroup", 0)
	return found
}

// removeCgroupTrees removes the cgroup directories dirs with their
// sub-cgroups, deepest first (cgroupfs directories are removed with
// rmdir, their files go with them).
func removeCgroupTrees(t testing.TB, dirs []string) {
	t.Helper()
	for _, d := range dirs {
		var all []string
		filepath.WalkDir(d, func(p string, ent os.DirEntry, err error) error {
			if err == nil && ent.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(all[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: remove cgroup %s: %v", all[i], err)
			}
		}
	}
}

// procStart identifies a live process: field 22 (start time) of
// /proc/PID/stat, or "" when there is no such process or it is a zombie.
func procStart(pid int) string {
	start, err := proc.StartTime(pid)
	if err != nil {
		return ""
	}
	return strconv.FormatUint(start, 10)
}

// waitProcsGone waits up to d for the processes (pid → procStart value
// recorded while they ran) to be gone; it fails the test for any left.
func waitProcsGone(t testing.TB, procs map[int]string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var left []int
		for pid, start := range procs {
			if start != "" && procStart(pid) == start {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				t.Errorf("process %d (%s) of the pod still runs after %s", pid, strings.TrimSpace(string(comm)), d)
				syscall.Kill(pid, syscall.SIGKILL) // ours: recorded from the pod's files
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountsBelowDir lists the host mount points at or below dir.
func mountsBelowDir(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// aciNames lists the entry names of a gzipped ACI.
func aciNames(t testing.TB, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not gzipped: %v", path, err)
	}
	names := map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		names[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = true
	}
}

// TestPodRealStop: rkt stop sends the app SIGTERM (the pod exits 143, or
// 0 when the app exits quietly on it); an app that ignores SIGTERM is
// SIGKILLed after the pod's grace period; stop --force kills at once.
func TestPodRealStop(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startSleeper()
	if out := e.MustRun("stop", bp.UUID); strings.TrimSpace(out) != bp.UUID {
		t.Errorf("rkt stop printed %q, want the UUID", out)
	}
	if code := bp.wait(t, 10*time.Second); code != 143 || !strings.Contains(bp.out.String(), "inspect: got SIGTERM") {
		t.Errorf("rkt run after stop: exit %d, want 143 with the app's SIGTERM message\nstdout: %s\nstderr: %s", code, bp.out.String(), bp.errb.String())
	}
	if st := e.podStatus(bp.UUID); st["state"] != "exited" || st["app-"+realApp] != "143" {
		t.Errorf("status after stop: %v, want state=exited app-%s=143", st, realApp)
	}

	quiet := e.startSleeper("--silent-sigterm")
	e.MustRun("stop", quiet.UUID)
	if code := quiet.wait(t, 10*time.Second); code != 0 {
		t.Errorf("rkt run of an app leaving quietly on SIGTERM: exit %d, want 0\nstderr: %s", code, quiet.errb.String())
	}

	// An app ignoring SIGTERM, with a 1 s grace period.
	const ignoreTerm = `trap "" TERM; touch /started; sleep 60`
	stubborn := e.startReady(append([]string{"--pod-annotation=rkt.dev/stop-grace-period=1s", e.img}, shExec(ignoreTerm)...)...)
	e.waitAppFile(stubborn, realApp, "started")
	t0 := time.Now()
	e.MustRun("stop", stubborn.UUID)
	code := stubborn.wait(t, 10*time.Second)
	took := time.Since(t0)
	if code != 137 {
		t.Errorf("rkt run of an app ignoring SIGTERM: exit %d, want 137 (SIGKILL)\nstderr: %s", code, stubborn.errb.String())
	}
	if took < 900*time.Millisecond || took > 6*time.Second {
		t.Errorf("the app ignoring SIGTERM was killed %s after rkt stop, want about the 1s grace period", took)
	}

	// stop --force does not wait for the (default, 10 s) grace period.
	forced := e.startReady(append([]string{e.img}, shExec(ignoreTerm)...)...)
	e.waitAppFile(forced, realApp, "started")
	t0 = time.Now()
	e.MustRun("stop", "--force", forced.UUID)
	code = forced.wait(t, 10*time.Second)
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("stop --force took %s", took)
	}
	if code != 137 {
		t.Errorf("rkt run after stop --force: exit %d, want 137\nstderr: %s", code, forced.errb.String())
	}
	// The app died with the pod's process 1: rkt status still says how.
	if st := e.podStatus(forced.UUID); st["state"] != "exited" || st["app-"+realApp] != "137" {
		t.Errorf("status after stop --force: %v, want state=exited app-%s=137", st, realApp)
	}
}

// TestPodRealSIGTERMToRun sends SIGTERM to the rkt run process itself
// (after the exec it is stage1's run entrypoint): the app gets it, the pod
// exits 143 and is collected cleanly.
func TestPodRealSIGTERMToRun(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startSleeper()
	if err := bp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := bp.wait(t, 10*time.Second); code != 143 || !strings.Contains(bp.out.String(), "inspect: got SIGTERM") {
		t.Errorf("rkt run after SIGTERM: exit %d, want 143 with the app's message\nstdout: %s\nstderr: %s", code, bp.out.String(), bp.errb.String())
	}
	if st := e.podStatus(bp.UUID); st["state"] != "exited" || st["app-"+realApp] != "143" {
		t.Errorf("status: %v, want exited with app-%s=143", st, realApp)
	}
	e.MustRun("gc", "--grace-period=0s")
	e.requireNoPods()
	if left := podCgroupsLeft([]string{bp.UUID}); len(left) > 0 {
		t.Errorf("cgroups left after gc: %v", left)
	}
}

// TestPodRealStatusEnterExport: status shows the pid while the pod runs
// and the app's exit code after; enter runs a command in the app; export
// writes the app's tree with its changes, which fetches and runs again.
func TestPodRealStatusEnterExport(t *testing.T) {
	e := newRealEnv(t)
	a := e.inspectACI("rkt.dev/export-me")
	a.Entries = append(a.Entries, testutils.File("etc/doomed", 0o644, "delete me\n"))
	img := e.writeImage("export-me.aci", a)
	bp := e.startReady(append([]string{img}, shExec("echo made-by-app > /made && rm /etc/doomed && touch /started && exec /inspect --sleep=60s")...)...)
	e.waitAppFile(bp, "export-me", "started")

	st := e.podStatus(bp.UUID)
	pid, err := strconv.Atoi(st["pid"])
	if st["state"] != "running" || st["exited"] != "false" || err != nil || pid != e.podPid(bp.UUID, "pid") {
		t.Errorf("status while running: %v, want state=running and the pid of the pod's pid file (%s)", st, e.podFile(bp.UUID, "pid"))
	}
	if procStart(pid) == "" {
		t.Errorf("status shows pid %d, which is not running", pid)
	}
	out := e.MustRun("enter", bp.UUID, "/bin/sh", "-c", "hostname; cat /made")
	if want := "rkt-" + bp.UUID + "\nmade-by-app\n"; out != want {
		t.Errorf("enter printed %q, want %q", out, want)
	}
	e.MustFail(254, "running", "export", bp.UUID, filepath.Join(e.dir, "too-early.aci"))

	e.MustRun("stop", bp.UUID)
	if code := bp.wait(t, 10*time.Second); code != 143 {
		t.Errorf("rkt run: exit %d, want 143\nstderr: %s", code, bp.errb.String())
	}
	st = e.podStatus(bp.UUID)
	if st["state"] != "exited" || st["exited"] != "true" || st["app-export-me"] != "143" {
		t.Errorf("status after exit: %v, want exited with app-export-me=143", st)
	}

	exported := filepath.Join(e.dir, "exported.aci")
	e.MustRun("export", bp.UUID, exported)
	names := aciNames(t, exported)
	for _, n := range []string{"manifest", "rootfs/made", "rootfs/inspect", "rootfs/etc/passwd"} {
		if !names[n] {
			t.Errorf("exported image lacks %s", n)
		}
	}
	if names["rootfs/etc/doomed"] {
		t.Errorf("exported image holds rootfs/etc/doomed, which the app deleted")
	}
	id := fetchOK(t, e.RktCtx, exported)
	if len(id) != 1 {
		t.Fatalf("fetch of the exported image printed %q", id)
	}
	out = e.runOK(append([]string{"--pull-policy=never", id[0]}, shExec("cat /made; test -e /etc/doomed && echo doomed-is-back; true")...)...)
	if out != "made-by-app\n" {
		t.Errorf("pod of the exported image printed %q, want the file the first app made (and no deleted file)", out)
	}
}

// TestPodRealEnterJoinsAppCgroups: a command run by rkt enter is in the
// app's cgroups from its start (docs/stage1-abi.md, enter), so the pod's
// limits apply to it.
func TestPodRealEnterJoinsAppCgroups(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startReady(e.img, "--exec=/inspect", "--", "--sleep=60s")
	want := "/rkt-" + bp.UUID + "/app-" + realApp
	// A race shows only sometimes: try a few times, directly and from a
	// child of the entered command.
	for i := 0; i < 6; i++ {
		cmd := []string{"/bin/cat", "/proc/self/cgroup"}
		if i%2 == 1 {
			cmd = []string{"/bin/sh", "-c", "cat /proc/self/cgroup"}
		}
		out := e.MustRun(append([]string{"enter", bp.UUID}, cmd...)...)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && !cgroup.UsedByPods(parts[1]) {
				continue // a hierarchy pods get no cgroups in
			}
			if !strings.HasSuffix(line, want) {
				t.Errorf("try %d: %v: cgroup %q is not the app's (…%s)", i, cmd, line, want)
			}
		}
		if t.Failed() {
			break
		}
	}
	e.MustRun("stop", "--force", bp.UUID)
	bp.wait(t, 10*time.Second)
}

// TestPodRealEnterHostileCommand: `rkt enter UUID ps`, where the pod
// replaced its /bin/ps with a program of its own, runs that program with
// the app's privileges in the app's mount namespace: not with the host's
// capabilities, not without seccomp, and not where joining the mount
// namespace /proc/self/ns/mnt names reaches the host's files.
func TestPodRealEnterHostileCommand(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startReady(append([]string{e.img}, shExec("rm -f /bin/ps && cp /inspect /bin/ps && touch /started && exec /inspect --sleep=60s")...)...)
	e.waitAppFile(bp, realApp, "started")
	hostFile := filepath.Join(t.TempDir(), "escaped")
	out := e.MustRun("enter", bp.UUID, "ps", "--print-caps-pid=0", "--print-seccomp", "--print-mntns", "--escape-mntns="+hostFile)
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	full := ""
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				full = strings.TrimSpace(v)
			}
		}
	}
	for _, bad := range []string{"CapEff: " + full + "\n", "Seccomp: 0\n", "mntns: " + hostMnt + "\n", "escape mntns: joined\n"} {
		if strings.Contains(out, bad) {
			t.Errorf("the entered command has %q\noutput:\n%s", strings.TrimSpace(bad), out)
		}
	}
	if _, err := os.Stat(hostFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the entered command wrote %s on the host (stat: %v)", hostFile, err)
	}
	e.MustRun("stop", "--force", bp.UUID)
	bp.wait(t, 10*time.Second)
}

// TestPodRealKilledOuterProcess kills rkt run (the pod's outer process)
// with SIGKILL: the supervisor and the app die with it, the pod shows
// exited, and gc leaves no pod directory, cgroup, mount or process.
func TestPodRealKilledOuterProcess(t *testing.T) {
	e := newRealEnv(t)
	bp := e.startReady(e.img, "--exec=/inspect", "--", "--sleep=60s")
	procs := map[int]string{}
	for _, pid := range []int{bp.cmd.Process.Pid, e.podPid(bp.UUID, "pid"), e.podPid(bp.UUID, "stage1/rootfs/rkt/app-pid/"+realApp)} {
		if procs[pid] = procStart(pid); procs[pid] == "" {
			t.Fatalf("process %d of the running pod is not there", pid)
		}
	}
	if err := bp.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bp.wait(t, 10*time.Second)
	waitProcsGone(t, procs, 5*time.Second)
	if p, ok := e.listPods()[bp.UUID]; !ok || p.State != "exited" {
		t.Errorf("rkt list after kill -9: %+v (found %v), want exited", p, ok)
	}
	e.MustRun("gc", "--grace-period=0s")
	if ph := e.podDirPhases(bp.UUID); len(ph) > 0 {
		t.Errorf("pod directory left in %v after gc", ph)
	}
	if left := podCgroupsLeft([]string{bp.UUID}); len(left) > 0 {
		t.Errorf("cgroups left after gc: %v", left)
	}
	if m := mountsBelowDir(t, e.Dir); len(m) > 0 {
		t.Errorf("mounts left below the data directory: %v", m)
	}
}

// TestPodRealManyInParallel starts 20 pods at once: all exit 0, and one
// gc removes them all with their cgroups.
func TestPodRealManyInParallel(t *testing.T) {
	e := newRealEnv(t)
	id := fetchOK(t, e.RktCtx, e.img)
	const n = 20
	args := make([][]string, n)
	for i := range args {
		args[i] = []string{insecureImage, "run", hostNet, "--pull-policy=never", id[0], "--exec=/bin/true"}
	}
	t0 := time.Now()
	res := runParallel(e.RktCtx, args)
	t.Logf("%d pods in parallel took %s", n, time.Since(t0))
	for i, r := range res {
		if r.Exit != 0 {
			t.Errorf("pod %d: %s", i, describeResult(args[i], r))
		}
	}
	pods := e.listPods()
	if len(pods) != n {
		t.Errorf("list shows %d pods, want %d", len(pods), n)
	}
	var uuids []string
	for u, p := range pods {
		uuids = append(uuids, u)
		if p.State != "exited" || len(p.Apps) != 1 || p.Apps[0].ExitCode == nil || *p.Apps[0].ExitCode != 0 {
			t.Errorf("pod %s: %+v, want exited with app exit code 0", u, p)
		}
	}
	out := e.MustRun("gc", "--grace-period=0s")
	if got := strings.Count(out, "garbage: removed pod"); got != n {
		t.Errorf("gc removed %d pods, want %d:\n%s", got, n, out)
	}
	e.requireNoPods()
	if left := podCgroupsLeft(uuids); len(left) > 0 {
		t.Errorf("cgroups left after gc: %v", left)
	}
}
