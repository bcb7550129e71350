package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

// The helpers in this file drive pods with the stub stage1
// (tests/stubstage1): a static binary that speaks the stage1 entrypoint
// interface without isolating anything, steered by pod annotations.

// stubEntrypoints are the stub's entrypoints (the binary dispatches on
// its basename) and the stage1 annotations naming them.
var stubEntrypoints = map[string]string{
	"run":   "/init",
	"stop":  "/stop",
	"gc":    "/gc",
	"enter": "/enter",
}

var stubBuild struct {
	once sync.Once
	bin  []byte // the static stub binary
	err  error
}

// buildStubBinary compiles tests/stubstage1 (static, CGO off) in a
// temporary directory and returns the binary.
func buildStubBinary() ([]byte, error) {
	root, err := testutils.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rkt-stub-stage1-")
	if err != nil {
		return nil, fmt.Errorf("build stub stage1: %w", err)
	}
	defer os.RemoveAll(dir)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // sudo often drops it from PATH
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "stub")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./tests/stubstage1")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build stub stage1 in %s: %w\n%s", root, err, stderr.Bytes())
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("build stub stage1: %w", err)
	}
	return bin, nil
}

// stubStage1With writes a stub stage1 ACI into a directory of the test
// and returns its path, for --stage1-path. Its rootfs holds /init, /stop,
// /gc and /enter (hardlinks of one binary, which dispatches on its name);
// its manifest names them as the entrypoints, with interface version 6.
// annotations override or add manifest annotations (an empty value drops
// one). The binary is built once per test binary.
func stubStage1With(t testing.TB, annotations map[string]string) string {
	t.Helper()
	stubBuild.once.Do(func() { stubBuild.bin, stubBuild.err = buildStubBinary() })
	if stubBuild.err != nil {
		t.Fatal(stubBuild.err)
	}
	annos := map[string]string{"coreos.com/rkt/stage1/interface-version": "6"}
	for name, path := range stubEntrypoints {
		annos["coreos.com/rkt/stage1/"+name] = path
	}
	for k, v := range annotations {
		if v == "" {
			delete(annos, k)
		} else {
			annos[k] = v
		}
	}
	a := testutils.ACI{
		Image: testutils.Image{
			Name:        "rkt.dev/stub-stage1",
			Labels:      map[string]string{"version": "0.0.1"},
			Annotations: annos,
		},
		Entries: []testutils.Entry{
			testutils.File("init", 0o755, string(stubBuild.bin)),
			testutils.Hardlink("stop", "init"),
			testutils.Hardlink("gc", "init"),
			testutils.Hardlink("enter", "init"),
		},
		Compression: testutils.CompressionNone,
		// The links must follow their target, which sorting would undo.
		KeepOrder: true,
	}
	p := filepath.Join(t.TempDir(), "stub-stage1.aci")
	if err := a.WriteFile(p); err != nil {
		t.Fatalf("write stub stage1: %v", err)
	}
	return p
}

// stubStage1 is the standard stub stage1 image; see stubStage1With.
func stubStage1(t testing.TB) string {
	t.Helper()
	return stubStage1With(t, nil)
}

// podAppACI writes a busybox app image named name whose app runs exec,
// and returns its path.
func podAppACI(t testing.TB, name string, exec ...string) string {
	t.Helper()
	es, err := testutils.BusyboxEntries()
	if err != nil {
		t.Fatal(err)
	}
	a := testutils.ACI{
		Image:       testutils.Image{Name: name, Labels: map[string]string{"version": "1.0.0"}, Exec: exec},
		Entries:     es,
		Compression: testutils.CompressionNone,
	}
	p := filepath.Join(t.TempDir(), strings.ReplaceAll(name, "/", "_")+".aci")
	if err := a.WriteFile(p); err != nil {
		t.Fatalf("write app image %s: %v", name, err)
	}
	return p
}

// podEnv is a functional-test context for pods: its own rkt directories,
// the stub stage1 and a busybox app image running /bin/true.
type podEnv struct {
	*testutils.RktCtx
	t      testing.TB
	stage1 string // stub stage1 ACI path
	app    string // app image path
}

// podTestApp is the name of the app image of newPodEnv.
const podTestApp = "rkt.dev/pod-test"

// newPodEnv needs root; it builds the stub stage1 and the app image.
func newPodEnv(t testing.TB) *podEnv {
	t.Helper()
	testutils.RequireRoot(t)
	return &podEnv{
		RktCtx: testutils.NewRktCtx(t),
		t:      t,
		stage1: stubStage1(t),
		app:    podAppACI(t, podTestApp, "/bin/true"),
	}
}

// podArgs returns a command line for run or prepare ("run", "prepare")
// with the stub stage1, the test app and the given pod annotations
// (K=V). Nothing in these tests is signed: --insecure-options=image skips
// signature checks of the stage1 and app images.
func (e *podEnv) podArgs(verb string, annotations []string, extra ...string) []string {
	args := []string{"--insecure-options=image", verb, "--stage1-path=" + e.stage1}
	for _, a := range annotations {
		args = append(args, "--pod-annotation="+a)
	}
	args = append(args, extra...)
	return append(args, e.app)
}

// podsPhaseDir is a phase directory of the context's pods.
func (e *podEnv) podsPhaseDir(phase string) string {
	return filepath.Join(e.Dir, "pods", phase)
}

// podPhases are the phase directories below pods/.
var podPhases = []string{"embryo", "prepare", "prepared", "run", "exited-garbage", "garbage"}

// podDirPhases returns the phases in which a directory for uuid exists.
func (e *podEnv) podDirPhases(uuid string) []string {
	var in []string
	for _, ph := range podPhases {
		if _, err := os.Lstat(filepath.Join(e.podsPhaseDir(ph), uuid)); err == nil {
			in = append(in, ph)
		}
	}
	return in
}

// requireNoPods fails the test if any phase directory holds anything.
func (e *podEnv) requireNoPods() {
	e.t.Helper()
	for _, ph := range podPhases {
		ents, err := os.ReadDir(e.podsPhaseDir(ph))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			e.t.Fatalf("read %s: %v", e.podsPhaseDir(ph), err)
		}
		for _, ent := range ents {
			e.t.Errorf("pod directory left behind: pods/%s/%s", ph, ent.Name())
		}
	}
}

// listedApp and listedPod are the JSON of rkt list and rkt status.
type listedApp struct {
	Name     string `json:"name"`
	Image    string `json:"image_name"`
	ImageID  string `json:"image_id"`
	ExitCode *int   `json:"exit_code"`
}

type listedPod struct {
	UUID     string      `json:"name"`
	State    string      `json:"state"`
	Apps     []listedApp `json:"apps"`
	Created  time.Time   `json:"created_at"`
	Started  time.Time   `json:"started_at"`
	PID      int         `json:"pid"`
	Networks []string    `json:"networks"`
}

// listPods runs rkt list --format=json and decodes it, by UUID.
func (e *podEnv) listPods() map[string]listedPod {
	e.t.Helper()
	out := e.MustRun("list", "--format=json")
	var pods []listedPod
	if err := json.Unmarshal([]byte(out), &pods); err != nil {
		e.t.Fatalf("rkt list --format=json printed %q: %v", out, err)
	}
	m := map[string]listedPod{}
	for _, p := range pods {
		if _, dup := m[p.UUID]; dup {
			e.t.Errorf("rkt list shows pod %s twice", p.UUID)
		}
		m[p.UUID] = p
	}
	return m
}

// podStatus runs rkt status (text) and returns its key=value lines.
func (e *podEnv) podStatus(args ...string) map[string]string {
	e.t.Helper()
	out := e.MustRun(append([]string{"status"}, args...)...)
	return parseKeyValues(e.t, out)
}

func parseKeyValues(t testing.TB, out string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("status line %q is not key=value (output %q)", line, out)
		}
		kv[k] = v
	}
	return kv
}

var podUUIDRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// mustUUID checks that s (trimmed) is a full pod UUID and returns it.
func mustUUID(t testing.TB, s string) string {
	t.Helper()
	u := strings.TrimSpace(s)
	if !podUUIDRe.MatchString(u) {
		t.Fatalf("%q is not a pod UUID", s)
	}
	return u
}

// prepare runs rkt prepare with annotations and returns the new UUID.
func (e *podEnv) prepare(annotations ...string) string {
	e.t.Helper()
	return mustUUID(e.t, e.MustRun(e.podArgs("prepare", annotations)...))
}

// runSaved runs a pod to completion with --uuid-file-save and returns
// its UUID and the result.
func (e *podEnv) runSaved(annotations ...string) (string, testutils.Result) {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "uuid")
	r := e.Run(e.podArgs("run", annotations, "--uuid-file-save="+f)...)
	data, err := os.ReadFile(f)
	if err != nil {
		e.t.Fatalf("--uuid-file-save wrote nothing: %v\nstdout: %s\nstderr: %s", err, r.Stdout, r.Stderr)
	}
	return mustUUID(e.t, string(data)), r
}

// bgPod is a pod started in the background with rkt run.
type bgPod struct {
	UUID string
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
	errb bytes.Buffer
	err  error // of cmd.Wait, once done is closed
}

// startPod starts rkt run in the background and waits until the pod is
// running (stage1 wrote its pid file). The pod's process group is killed
// when the test ends, if it is still there.
func (e *podEnv) startPod(annotations ...string) *bgPod {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "uuid")
	ctx, cancel := context.WithCancel(context.Background())
	bp := &bgPod{done: make(chan struct{})}
	bp.cmd = e.Cmd(ctx, e.podArgs("run", annotations, "--uuid-file-save="+f)...)
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		if data, err := os.ReadFile(f); err == nil && podUUIDRe.MatchString(strings.TrimSpace(string(data))) {
			bp.UUID = strings.TrimSpace(string(data))
			if _, err := os.Stat(filepath.Join(e.podsPhaseDir("run"), bp.UUID, "pid")); err == nil {
				return bp
			}
		}
		select {
		case <-bp.done:
			e.t.Fatalf("rkt run exited before the pod ran: %v\nstdout: %s\nstderr: %s", bp.err, bp.out.String(), bp.errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			<-bp.done // the buffers are not written to any more
			e.t.Fatalf("pod not running after 20s\nstdout: %s\nstderr: %s", bp.out.String(), bp.errb.String())
		}
	}
}

// wait waits up to d for rkt run to end and returns its exit code.
func (bp *bgPod) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-bp.done:
	case <-time.After(d):
		t.Fatalf("rkt run of pod %s still running after %s", bp.UUID, d)
	}
	return bp.cmd.ProcessState.ExitCode()
}
