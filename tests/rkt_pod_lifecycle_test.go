package tests

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

// Functional tests of the pod lifecycle in stage0, with the stub stage1:
// run, prepare, run-prepared, list, status, stop, gc, rm, cat-manifest.
// Each test has its own data directory; all need root.

// podAppName is the app name rkt derives from podTestApp.
const podAppName = "pod-test"

// stubRan is what the stub stage1's run entrypoint prints on stdout.
const stubRan = "stub-stage1:"

func TestPodRunExitCode(t *testing.T) {
	e := newPodEnv(t)
	uuid, r := e.runSaved("rkt.dev/stub-exit=7")
	if r.Exit != 7 {
		t.Fatalf("rkt run of a pod whose app exits 7: want exit 7, got %d\nstdout: %s\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, stubRan) || !strings.Contains(r.Stdout, uuid) {
		t.Errorf("stage1 did not run with the pod's UUID: stdout %q", r.Stdout)
	}
	st := e.podStatus(uuid)
	if st["state"] != "exited" || st["exited"] != "true" {
		t.Errorf("status of an exited pod: %v", st)
	}
	if st["app-"+podAppName] != "7" {
		t.Errorf("status: want app-%s=7, got %v", podAppName, st)
	}
	if _, ok := st["pid"]; ok {
		t.Errorf("status of an exited pod shows a pid: %v", st)
	}
	created, err := time.Parse(time.RFC3339Nano, st["created"])
	if err != nil || time.Since(created) > time.Minute || time.Since(created) < 0 {
		t.Errorf("status: created=%q is not a recent time (%v)", st["created"], err)
	}
	started, err := time.Parse(time.RFC3339Nano, st["started"])
	if err != nil || started.Before(created) {
		t.Errorf("status: started=%q is not a time after created=%q (%v)", st["started"], st["created"], err)
	}
	// A UUID prefix works as well as the full UUID.
	if got := e.podStatus(uuid[:8]); got["state"] != "exited" {
		t.Errorf("status by UUID prefix %s: %v", uuid[:8], got)
	}
	// --wait on an exited pod returns at once.
	begin := time.Now()
	if got := e.podStatus("--wait=30s", uuid); got["app-"+podAppName] != "7" {
		t.Errorf("status --wait=30s of an exited pod: %v", got)
	}
	if got := e.podStatus("--wait", uuid); got["app-"+podAppName] != "7" {
		t.Errorf("status --wait (no value) of an exited pod: %v", got)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("status --wait of an exited pod took %s", d)
	}
	// status --format=json carries the same.
	var js listedPod
	out := e.MustRun("status", "--format=json", uuid)
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("status --format=json printed %q: %v", out, err)
	}
	if js.UUID != uuid || js.State != "exited" || len(js.Apps) != 1 || js.Apps[0].ExitCode == nil || *js.Apps[0].ExitCode != 7 {
		t.Errorf("status --format=json: %s", out)
	}

	pods := e.listPods()
	p, ok := pods[uuid]
	if !ok || len(pods) != 1 {
		t.Fatalf("list --format=json: want only pod %s, got %v", uuid, pods)
	}
	if p.State != "exited" {
		t.Errorf("list: state %q, want exited", p.State)
	}
	if len(p.Apps) != 1 || p.Apps[0].Name != podAppName || p.Apps[0].Image != podTestApp ||
		p.Apps[0].ImageID != podImageID(t, e.app) {
		t.Errorf("list: apps %+v, want %s from %s (%s)", p.Apps, podAppName, podTestApp, podImageID(t, e.app))
	}
	if p.Created.IsZero() || p.Started.IsZero() {
		t.Errorf("list: created %v, started %v: want both set", p.Created, p.Started)
	}
	if p.PID == 0 {
		t.Errorf("list: no pid for a pod that ran")
	}

	// Exit codes are the app's, not rkt's: 0 and a code above 125 pass too.
	for _, code := range []int{0, 130} {
		u, r := e.runSaved(fmt.Sprintf("rkt.dev/stub-exit=%d", code))
		if r.Exit != code {
			t.Errorf("stub-exit=%d: rkt run exited %d\nstderr: %s", code, r.Exit, r.Stderr)
		}
		if st := e.podStatus(u); st["app-"+podAppName] != strconv.Itoa(code) {
			t.Errorf("stub-exit=%d: status %v", code, st)
		}
	}
}

// podImageID is the store ID of an uncompressed ACI file.
func podImageID(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(data)
	return "sha512-" + hex.EncodeToString(sum[:32])
}

func TestPodListFormats(t *testing.T) {
	e := newPodEnv(t)
	if out := strings.TrimSpace(e.MustRun("list", "--format=json")); out != "[]" {
		t.Errorf("list --format=json with no pods printed %q, want []", out)
	}
	legend := e.MustRun("list")
	if !strings.HasPrefix(legend, "UUID") || !strings.Contains(legend, "STATE") {
		t.Errorf("list with no pods: want the header, got %q", legend)
	}
	if out := e.MustRun("list", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Errorf("list --no-legend with no pods printed %q", out)
	}
	uuid, _ := e.runSaved()
	out := e.MustRun("list", "--no-legend")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || strings.Contains(out, "UUID") {
		t.Fatalf("list --no-legend: want one row and no header, got %q", out)
	}
	fields := strings.Fields(lines[0])
	if len(fields) < 4 || fields[0] != uuid[:8] || fields[1] != podAppName || fields[2] != podTestApp || fields[3] != "exited" {
		t.Errorf("list row %q: want %s %s %s exited ...", lines[0], uuid[:8], podAppName, podTestApp)
	}
	full := e.MustRun("list", "--full", "--no-legend")
	if !strings.Contains(full, uuid) || !strings.Contains(full, podImageID(t, e.app)) {
		t.Errorf("list --full: want the full UUID and image ID, got %q", full)
	}
	var pretty []listedPod
	out = e.MustRun("list", "--format=json-pretty")
	if err := json.Unmarshal([]byte(out), &pretty); err != nil || len(pretty) != 1 || pretty[0].UUID != uuid {
		t.Errorf("list --format=json-pretty printed %q (%v)", out, err)
	}
	e.MustFail(254, "format", "list", "--format=yaml")
}

func TestPodPrepareAndRunPrepared(t *testing.T) {
	e := newPodEnv(t)
	saved := filepath.Join(t.TempDir(), "uuid")
	out := e.MustRun(e.podArgs("prepare", []string{"rkt.dev/stub-exit=3"}, "--uuid-file-save="+saved)...)
	uuid := mustUUID(t, out)
	data, err := os.ReadFile(saved)
	if err != nil || strings.TrimSpace(string(data)) != uuid {
		t.Fatalf("--uuid-file-save wrote %q (%v), prepare printed %s", data, err, uuid)
	}
	if got := e.podDirPhases(uuid); len(got) != 1 || got[0] != "prepared" {
		t.Errorf("prepared pod is in %v, want [prepared]", got)
	}
	if p := e.listPods()[uuid]; p.State != "prepared" || len(p.Apps) != 1 || !p.Started.IsZero() {
		t.Errorf("list after prepare: %+v, want state prepared, one app, not started", p)
	}
	// A time that is not known is left out, not printed as year 1.
	for _, args := range [][]string{{"list", "--format=json"}, {"status", "--format=json", uuid}} {
		if out := e.MustRun(args...); strings.Contains(out, "0001-01-01") {
			t.Errorf("rkt %s prints unknown times as the zero time: %s", strings.Join(args, " "), out)
		}
	}
	st := e.podStatus("--uuid-file=" + saved)
	if st["state"] != "prepared" || st["exited"] != "false" {
		t.Errorf("status --uuid-file of a prepared pod: %v", st)
	}
	e.MustFail(254, "not running", "stop", uuid)

	r := e.Run("run-prepared", uuid)
	if r.Exit != 3 || !strings.Contains(r.Stdout, stubRan) {
		t.Fatalf("run-prepared: want exit 3 and stage1's output, got exit %d\nstdout: %s\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}
	st = e.podStatus("--uuid-file=" + saved)
	if st["state"] != "exited" || st["app-"+podAppName] != "3" {
		t.Errorf("status after run-prepared: %v", st)
	}
	// A pod runs once.
	e.MustFail(254, "not prepared", "run-prepared", uuid)
	e.MustFail(254, "no pod", "run-prepared", "0000000")
}

// TestPodRunPreparedRace starts two run-prepared of one pod at once,
// several times: exactly one runs it.
func TestPodRunPreparedRace(t *testing.T) {
	e := newPodEnv(t)
	refusal := regexp.MustCompile(`not prepared|in use by another process|another rkt won the race`)
	for round := 0; round < 10; round++ {
		uuid := e.prepare("rkt.dev/stub-exit=0")
		var wg sync.WaitGroup
		res := make([]testutils.Result, 2)
		start := make(chan struct{})
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = e.Run("run-prepared", uuid)
			}()
		}
		close(start)
		wg.Wait()
		ran := 0
		for i, r := range res {
			switch {
			case r.Exit == 0 && strings.Contains(r.Stdout, stubRan):
				ran++
			case r.Exit == 254 && !strings.Contains(r.Stdout, stubRan) && refusal.MatchString(r.Stderr):
			default:
				t.Errorf("round %d, run-prepared %d: want a run (exit 0) or a clear refusal (exit 254), got exit %d\nstdout: %s\nstderr: %s",
					round, i, r.Exit, r.Stdout, r.Stderr)
			}
		}
		if ran != 1 {
			t.Fatalf("round %d: %d of 2 racing run-prepared ran the pod, want exactly 1", round, ran)
		}
		if st := e.podStatus(uuid); st["state"] != "exited" || st["app-"+podAppName] != "0" {
			t.Errorf("round %d: status after the race: %v", round, st)
		}
	}
}

func TestPodStatusWaitAndStop(t *testing.T) {
	e := newPodEnv(t)
	// Cleanups run last-registered first: this one, registered before
	// startPod's, waits for the status --wait below after the pod is
	// killed and before the directories go.
	var waiter sync.WaitGroup
	t.Cleanup(waiter.Wait)
	bp := e.startPod("rkt.dev/stub-sleep=30s")

	p := e.listPods()[bp.UUID]
	if p.State != "running" || p.PID != bp.cmd.Process.Pid {
		t.Errorf("list of a running pod: state %q pid %d, want running and rkt run's pid %d", p.State, p.PID, bp.cmd.Process.Pid)
	}
	if !strings.Contains(e.MustRun("list", "--no-legend"), "running") {
		t.Errorf("list (table) does not show the pod running")
	}
	st := e.podStatus(bp.UUID)
	// After the exec the stub has rkt run's PID.
	if st["state"] != "running" || st["exited"] != "false" || st["pid"] != strconv.Itoa(bp.cmd.Process.Pid) {
		t.Errorf("status of a running pod: %v, want state=running exited=false pid=%d", st, bp.cmd.Process.Pid)
	}
	if _, ok := st["app-"+podAppName]; ok {
		t.Errorf("status of a running pod shows an exit code: %v", st)
	}
	begin := time.Now()
	if r := e.MustFail(254, "still running after --wait=200ms", "status", "--wait=200ms", bp.UUID); strings.Contains(r.Stderr, "deadline") {
		t.Errorf("status --wait timeout says %q: say what happened, not Go's context error", r.Stderr)
	}
	if d := time.Since(begin); d < 200*time.Millisecond || d > 10*time.Second {
		t.Errorf("status --wait=200ms on a running pod returned after %s", d)
	}
	// The stub never reports ready.
	e.MustFail(254, "not ready", "status", "--wait-ready=200ms", bp.UUID)
	e.MustFail(254, "--wait", "status", "--wait=soon", bp.UUID)
	e.MustFail(254, "stop it first", "rm", bp.UUID)
	if got := e.podDirPhases(bp.UUID); len(got) != 1 || got[0] != "run" {
		t.Errorf("rm of a running pod moved it: %v", got)
	}
	// gc leaves a running pod alone, quietly.
	if r := e.Run("gc", "--grace-period=0s", "--expire-prepared=0s"); r.Exit != 0 || strings.Contains(r.Stdout, bp.UUID) || strings.Contains(r.Stderr, bp.UUID) {
		t.Errorf("gc with a running pod: exit %d\nstdout: %s\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}
	if st := e.podStatus(bp.UUID); st["state"] != "running" {
		t.Errorf("after gc the running pod is %v", st)
	}

	// status --wait returns when rkt stop ends the pod.
	waited := make(chan testutils.Result, 1)
	waiter.Add(1)
	go func() {
		defer waiter.Done()
		waited <- e.Run("status", "--wait=20s", bp.UUID)
	}()
	time.Sleep(100 * time.Millisecond)
	if out := e.MustRun("stop", bp.UUID); strings.TrimSpace(out) != bp.UUID {
		t.Errorf("stop printed %q, want the UUID", out)
	}
	if code := bp.wait(t, 10*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("rkt run of a stopped pod exited %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	r := <-waited
	if r.Exit != 0 {
		t.Fatalf("status --wait: exit %d\nstderr: %s", r.Exit, r.Stderr)
	}
	st = parseKeyValues(t, r.Stdout)
	if st["state"] != "exited" || st["app-"+podAppName] != "143" {
		t.Errorf("status --wait after stop: %v, want state=exited app-%s=143", st, podAppName)
	}
	e.MustFail(254, "not running", "stop", bp.UUID)

	// stop --force (SIGKILL), with --uuid-file.
	bp2 := e.startPod("rkt.dev/stub-sleep=30s")
	f := filepath.Join(t.TempDir(), "uuid")
	if err := os.WriteFile(f, []byte(bp2.UUID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.MustRun("stop", "--force", "--uuid-file="+f)
	bp2.wait(t, 10*time.Second)
	if ws, ok := bp2.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("rkt run after stop --force: %v, want killed by SIGKILL", bp2.cmd.ProcessState)
	}
	st = e.podStatus("--wait=10s", bp2.UUID)
	if st["state"] != "exited" || st["exited"] != "true" {
		t.Errorf("status after stop --force: %v", st)
	}
	e.MustFail(254, "no pod", "stop", "ffffffff")

	out := e.MustRun("gc", "--grace-period=0s")
	for _, u := range []string{bp.UUID, bp2.UUID} {
		if !strings.Contains(out, fmt.Sprintf("removed pod %q", u)) {
			t.Errorf("gc output does not list %s as removed: %q", u, out)
		}
	}
	e.requireNoPods()
}

// TestPodKilledIsCollected kills rkt run (the stub, after the exec) with
// SIGKILL: the pod shows exited and the next gc cleans it up, running the
// stage1 gc entrypoint.
func TestPodKilledIsCollected(t *testing.T) {
	e := newPodEnv(t)
	bp := e.startPod("rkt.dev/stub-sleep=30s")
	if err := syscall.Kill(bp.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bp.wait(t, 10*time.Second)
	if p := e.listPods()[bp.UUID]; p.State != "exited" {
		t.Errorf("list after SIGKILL: state %q, want exited", p.State)
	}
	st := e.podStatus(bp.UUID)
	if st["state"] != "exited" || st["exited"] != "true" {
		t.Errorf("status after SIGKILL: %v", st)
	}

	out := e.MustRun("gc", "--mark-only")
	if !strings.Contains(out, fmt.Sprintf("moving pod %q to garbage", bp.UUID)) {
		t.Errorf("gc --mark-only output: %q", out)
	}
	if got := e.podDirPhases(bp.UUID); len(got) != 1 || got[0] != "exited-garbage" {
		t.Fatalf("after gc --mark-only the pod is in %v, want [exited-garbage]", got)
	}
	if st := e.podStatus(bp.UUID); st["state"] != "exited garbage" {
		t.Errorf("status of a marked pod: %v", st)
	}
	// The stub's gc writes "stub-gc-ran" in the pod directory, which gc
	// then deletes. A symlink there sends the write to a file that
	// survives, which proves the entrypoint ran and shows its arguments.
	witness := filepath.Join(t.TempDir(), "gc-witness")
	podDir := filepath.Join(e.podsPhaseDir("exited-garbage"), bp.UUID)
	if err := os.Symlink(witness, filepath.Join(podDir, "stub-gc-ran")); err != nil {
		t.Fatal(err)
	}
	out = e.MustRun("gc", "--grace-period=0s")
	if !strings.Contains(out, fmt.Sprintf("garbage: removed pod %q", bp.UUID)) {
		t.Errorf("gc output does not list the pod as removed: %q", out)
	}
	if got := e.podDirPhases(bp.UUID); len(got) != 0 {
		t.Errorf("after gc the pod is still in %v", got)
	}
	args, err := os.ReadFile(witness)
	if err != nil {
		t.Fatalf("the stage1 gc entrypoint did not run: %v", err)
	}
	if !strings.HasSuffix(string(args), " "+bp.UUID) || !strings.Contains(string(args), "--local-config="+e.LocalConfig) {
		t.Errorf("stage1 gc ran with %q, want --local-config=%s and the UUID last", args, e.LocalConfig)
	}
	e.requireNoPods()
}

func TestPodGC(t *testing.T) {
	e := newPodEnv(t)
	exited, r := e.runSaved()
	if r.Exit != 0 {
		t.Fatalf("rkt run: exit %d\nstderr: %s", r.Exit, r.Stderr)
	}
	prepared := e.prepare()
	// An aborted prepare: a pod directory in prepare/ that nobody locks.
	aborted := "0badc0de-0000-4000-8000-000000000001"
	if err := os.MkdirAll(filepath.Join(e.podsPhaseDir("prepare"), aborted), 0o750); err != nil {
		t.Fatal(err)
	}
	pods := e.listPods()
	for u, want := range map[string]string{exited: "exited", prepared: "prepared", aborted: "aborted prepare"} {
		if pods[u].State != want {
			t.Errorf("list: pod %s is %q, want %q", u, pods[u].State, want)
		}
	}

	out := e.MustRun("gc", "--mark-only")
	if got := e.podDirPhases(exited); len(got) != 1 || got[0] != "exited-garbage" {
		t.Errorf("gc --mark-only: exited pod is in %v, want [exited-garbage] (output %q)", got, out)
	}
	if got := e.podDirPhases(aborted); len(got) != 1 || got[0] != "garbage" {
		t.Errorf("gc --mark-only: aborted prepare is in %v, want [garbage] (output %q)", got, out)
	}
	if got := e.podDirPhases(prepared); len(got) != 1 || got[0] != "prepared" {
		t.Errorf("gc --mark-only: fresh prepared pod is in %v, want [prepared]", got)
	}

	// Within the grace period exited pods stay; garbage goes.
	out = e.MustRun("gc", "--grace-period=1h")
	if got := e.podDirPhases(exited); len(got) != 1 || got[0] != "exited-garbage" {
		t.Errorf("gc --grace-period=1h: exited pod is in %v, want kept in exited-garbage (output %q)", got, out)
	}
	if got := e.podDirPhases(aborted); len(got) != 0 || !strings.Contains(out, fmt.Sprintf("removed pod %q", aborted)) {
		t.Errorf("gc: aborted prepare is still in %v (output %q)", got, out)
	}
	e.MustRun("gc") // the default grace period (30 min)
	if got := e.podDirPhases(exited); len(got) != 1 {
		t.Errorf("gc with the default grace period removed a pod marked just now")
	}
	if got := e.podDirPhases(prepared); len(got) != 1 || got[0] != "prepared" {
		t.Errorf("gc with the default --expire-prepared collected a fresh prepared pod: %v", got)
	}

	out = e.MustRun("gc", "--grace-period=1h", "--expire-prepared=0s")
	if got := e.podDirPhases(prepared); len(got) != 0 || !strings.Contains(out, fmt.Sprintf("removed pod %q", prepared)) {
		t.Errorf("gc --expire-prepared=0s: prepared pod is in %v (output %q)", got, out)
	}
	if got := e.podDirPhases(exited); len(got) != 1 {
		t.Errorf("gc --grace-period=1h removed the exited pod")
	}
	out = e.MustRun("gc", "--grace-period=0s")
	if !strings.Contains(out, fmt.Sprintf("removed pod %q", exited)) {
		t.Errorf("gc --grace-period=0s output: %q", out)
	}
	e.requireNoPods()
	if out := e.MustRun("gc", "--grace-period=0s"); strings.TrimSpace(out) != "" {
		t.Errorf("gc with nothing to do printed %q", out)
	}
	e.MustFail(254, "grace-period", "gc", "--grace-period=later")
}

func TestPodRm(t *testing.T) {
	e := newPodEnv(t)
	uuid, _ := e.runSaved()
	out := e.MustRun("rm", uuid)
	if strings.TrimSpace(out) != strconv.Quote(uuid) {
		t.Errorf("rm printed %q, want %q", out, strconv.Quote(uuid))
	}
	if got := e.podDirPhases(uuid); len(got) != 0 {
		t.Errorf("rm left the pod in %v", got)
	}
	e.MustFail(254, "no pod", "rm", uuid)

	// A prepared pod is removed too; several UUIDs, --uuid-file.
	prepared := e.prepare()
	exited, _ := e.runSaved()
	e.MustRun("rm", prepared, exited)
	second, _ := e.runSaved()
	f := filepath.Join(t.TempDir(), "uuid")
	if err := os.WriteFile(f, []byte(second+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.MustRun("rm", "--uuid-file="+f)
	e.requireNoPods()

	// A running pod is refused and keeps running; other UUIDs still go.
	bp := e.startPod("rkt.dev/stub-sleep=30s")
	third, _ := e.runSaved()
	r := e.MustFail(254, "stop it first", "rm", bp.UUID, third)
	if !strings.Contains(r.Stderr, bp.UUID) || !strings.Contains(r.Stderr, "running") {
		t.Errorf("rm of a running pod: stderr %q should name the pod and its state", r.Stderr)
	}
	if got := e.podDirPhases(third); len(got) != 0 {
		t.Errorf("rm RUNNING EXITED: the exited pod is still in %v", got)
	}
	if st := e.podStatus(bp.UUID); st["state"] != "running" {
		t.Errorf("after a refused rm the pod is %v", st)
	}
	e.MustRun("stop", "--force", bp.UUID)
	bp.wait(t, 10*time.Second)
	e.MustRun("rm", bp.UUID)
	e.requireNoPods()
}

func TestPodCatManifest(t *testing.T) {
	e := newPodEnv(t)
	saved := filepath.Join(t.TempDir(), "uuid")
	uuid := mustUUID(t, e.MustRun(e.podArgs("prepare", []string{"rkt.dev/stub-exit=5"}, "--uuid-file-save="+saved)...))
	out := e.MustRun("cat-manifest", uuid)
	var pm struct {
		ACKind string `json:"acKind"`
		Apps   []struct {
			Name  string `json:"name"`
			Image struct {
				Name string `json:"name"`
				ID   string `json:"id"`
			} `json:"image"`
			App struct {
				Exec []string `json:"exec"`
			} `json:"app"`
		} `json:"apps"`
		Annotations []struct{ Name, Value string } `json:"annotations"`
	}
	if err := json.Unmarshal([]byte(out), &pm); err != nil {
		t.Fatalf("cat-manifest printed %q: %v", out, err)
	}
	if pm.ACKind != "PodManifest" || len(pm.Apps) != 1 {
		t.Fatalf("cat-manifest: %s", out)
	}
	a := pm.Apps[0]
	if a.Name != podAppName || a.Image.Name != podTestApp || a.Image.ID != podImageID(t, e.app) {
		t.Errorf("cat-manifest app: %+v, want %s from %s (%s)", a, podAppName, podTestApp, podImageID(t, e.app))
	}
	if strings.Join(a.App.Exec, " ") != "/bin/true" {
		t.Errorf("cat-manifest exec: %v", a.App.Exec)
	}
	found := false
	for _, an := range pm.Annotations {
		found = found || an.Name == "rkt.dev/stub-exit" && an.Value == "5"
	}
	if !found {
		t.Errorf("cat-manifest lacks the pod annotation: %v", pm.Annotations)
	}
	compact := e.MustRun("cat-manifest", "--pretty-print=false", "--uuid-file="+saved)
	if strings.Count(strings.TrimSpace(compact), "\n") != 0 || !json.Valid([]byte(compact)) {
		t.Errorf("cat-manifest --pretty-print=false: want one line of JSON, got %q", compact)
	}
	// After a run the manifest is still there.
	e.Run("run-prepared", uuid)
	if out2 := e.MustRun("cat-manifest", uuid); out2 != out {
		t.Errorf("cat-manifest changed after the run:\n%s\n%s", out, out2)
	}
	e.MustFail(254, "no pod", "cat-manifest", "0123abcd")
}

// TestPodManyInParallel runs 20 pods at once; one gc collects them all.
func TestPodManyInParallel(t *testing.T) {
	e := newPodEnv(t)
	const n = 20
	res := make([]testutils.Result, n)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.Run(e.podArgs("run", []string{"rkt.dev/stub-exit=0"})...)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.Exit != 0 || !strings.Contains(r.Stdout, stubRan) {
			t.Errorf("pod %d: exit %d\nstdout: %s\nstderr: %s", i, r.Exit, r.Stdout, r.Stderr)
		}
	}
	pods := e.listPods()
	if len(pods) != n {
		t.Errorf("list shows %d pods, want %d", len(pods), n)
	}
	for u, p := range pods {
		if p.State != "exited" || len(p.Apps) != 1 || p.Apps[0].ExitCode == nil || *p.Apps[0].ExitCode != 0 {
			t.Errorf("pod %s: %+v", u, p)
		}
	}
	out := e.MustRun("gc", "--grace-period=0s")
	if got := strings.Count(out, "garbage: removed pod"); got != n {
		t.Errorf("gc removed %d pods, want %d:\n%s", got, n, out)
	}
	e.requireNoPods()
}

// TestPodConcurrentGC runs three gc at once over exited pods: each pod is
// removed by exactly one of them, and none reports an error for pods the
// others took.
func TestPodConcurrentGC(t *testing.T) {
	e := newPodEnv(t)
	const n = 8
	uuids := map[string]bool{}
	for i := 0; i < n; i++ {
		u, r := e.runSaved()
		if r.Exit != 0 {
			t.Fatalf("rkt run: exit %d\nstderr: %s", r.Exit, r.Stderr)
		}
		uuids[u] = true
	}
	res := make([]testutils.Result, 3)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.Run("gc", "--grace-period=0s")
		}()
	}
	wg.Wait()
	removed := map[string]int{}
	re := regexp.MustCompile(`removed pod "([0-9a-f-]+)"`)
	for i, r := range res {
		if r.Exit != 0 || strings.TrimSpace(r.Stderr) != "" {
			t.Errorf("gc %d: exit %d\nstderr: %s", i, r.Exit, r.Stderr)
		}
		for _, m := range re.FindAllStringSubmatch(r.Stdout, -1) {
			removed[m[1]]++
		}
	}
	for u := range uuids {
		if removed[u] != 1 {
			t.Errorf("pod %s was reported removed %d times, want once", u, removed[u])
		}
	}
	e.requireNoPods()
}
