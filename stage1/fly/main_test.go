package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/stage1/stage1test"

	"github.com/rkt/rkt/pkg/testutil"
)

var binDir, rootfs string

func TestMain(m *testing.M) {
	if !testutil.RootTests() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "rkt-stage1-fly-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		if binDir, err = stage1test.Build("./stage1/fly", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		rootfs = filepath.Join(dir, "rootfs")
		if err := stage1test.InspectRootfs(rootfs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newPod(t *testing.T, spec stage1test.Spec) *stage1test.Pod {
	t.Helper()
	testutil.RequireRoot(t)
	for i := range spec.Apps {
		spec.Apps[i].Rootfs = rootfs
	}
	return stage1test.NewPod(t, binDir, spec)
}

func TestFlyRunsChrooted(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPod(t, stage1test.Spec{
		Apps: []stage1test.App{{
			Name: "a",
			Exec: []string{"/inspect", "--print-pidns", "--print-hostname", "--print-user", "--read-file=/vol/f", "--stat-file=/inspect", "--print-caps-pid=0", "--exit-code=9"},
			User: "user", Mounts: []schema.Mount{{Volume: "v", Path: "/vol"}},
		}},
		Volumes: []types.Volume{{Name: "v", Kind: "host", Source: host}},
	})
	r := p.RunPod("--net=host")
	if r.Code != 9 {
		t.Fatalf("exit %d, want 9\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	selfNS, _ := os.Readlink("/proc/self/ns/pid")
	hostname, _ := os.Hostname()
	for k, v := range map[string]string{"pidns": selfNS, "hostname": hostname, "uid": "1000", "file type": "regular"} {
		if got, _ := stage1test.Value(r.Stdout, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(r.Stdout, "host file") {
		t.Errorf("the volume is not there: %q", r.Stdout)
	}
	if c, ok := p.Status("a"); !ok || c != 9 {
		t.Errorf("status %d %v", c, ok)
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(p.ReadFile("pid"))); err != nil || pid <= 1 {
		t.Errorf("pid file %q", p.ReadFile("pid"))
	}
	if m := stage1test.MountsBelow(t, p.Dir); len(m) != 0 {
		t.Errorf("mounts left after the pod exited: %v", m)
	}
	// The app wrote nothing to the image.
	if _, err := os.Stat(filepath.Join(rootfs, "vol")); err == nil {
		t.Error("the mount point was created in the image's tree")
	}
}

func TestFlyExecFailure(t *testing.T) {
	p := newPod(t, stage1test.Spec{Apps: []stage1test.App{{Name: "a", Exec: []string{"nosuchprogram"}}}})
	if r := p.RunPod("--net=host"); r.Code != 127 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("exit %d stderr %q", r.Code, r.Stderr)
	}
	p = newPod(t, stage1test.Spec{Apps: []stage1test.App{{Name: "a", Exec: []string{"/inspect"}}, {Name: "b", Exec: []string{"/inspect"}}}})
	if r := p.RunPod("--net=host"); r.Code != 254 || !strings.Contains(r.Stderr, "exactly one app") {
		t.Errorf("two apps: exit %d stderr %q", r.Code, r.Stderr)
	}
}

func TestFlyGCUnmounts(t *testing.T) {
	p := newPod(t, stage1test.Spec{Apps: []stage1test.App{{Name: "a", Exec: []string{"/inspect", "--sleep=30"}}}})
	c := p.Command(t.Context(), "init", "--net=host", p.UUID)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if !p.WaitFile("stage1/rootfs/rkt/supervisor-status", 10e9) {
		t.Fatal("not ready")
	}
	if len(stage1test.MountsBelow(t, p.Dir)) == 0 {
		t.Fatal("no mounts while running")
	}
	// Killed: nothing unmounts; gc does.
	c.Process.Kill()
	c.Wait()
	if r := p.Run("gc", p.UUID); r.Code != 0 {
		t.Fatalf("gc: %d %s", r.Code, r.Stderr)
	}
	if m := stage1test.MountsBelow(t, p.Dir); len(m) != 0 {
		t.Errorf("mounts left after gc: %v", m)
	}
}

func TestFlyEnterAndStop(t *testing.T) {
	p := newPod(t, stage1test.Spec{Apps: []stage1test.App{{Name: "a", Exec: []string{"/inspect", "--print-msg=up", "--sleep=30"}}}})
	c := p.Command(t.Context(), "init", "--net=host", p.UUID)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if !p.WaitFile("stage1/rootfs/rkt/supervisor-status", 10e9) {
		t.Fatal("not ready")
	}
	appPid := strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))
	r := p.Run("enter", "--pid="+appPid, "--appname=a", "--", "/bin/sh", "-c", "test -x /inspect && echo in-root")
	if r.Code != 0 || !strings.Contains(r.Stdout, "in-root") {
		t.Errorf("enter: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := p.Run("stop", p.UUID); r.Code != 0 {
		t.Fatalf("stop: %d %s", r.Code, r.Stderr)
	}
	err := c.Wait()
	if c.ProcessState == nil || c.ProcessState.ExitCode() != 143 {
		t.Errorf("after stop: %v (want exit 143)", err)
	}
	if c, _ := p.Status("a"); c != 143 {
		t.Errorf("status %d, want 143", c)
	}
}

// TestFlyRefusesNetworks: fly has the host's network namespace only; any
// other --net (the default included) is refused before anything runs.
func TestFlyRefusesNetworks(t *testing.T) {
	for _, args := range [][]string{{"--net=default"}, {"--net=none"}, {"--net=a,b"}, nil} {
		p := newPod(t, stage1test.Spec{Apps: []stage1test.App{{Name: "a", Exec: []string{"/inspect", "--print-msg=started"}}}})
		r := p.RunPod(args...)
		if r.Code != 254 || !strings.Contains(r.Stderr, "use --net=host") || strings.Contains(r.Stdout, "started") {
			t.Errorf("%q: exit %d stdout %q stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// TestFlyEventHandlers: pre-start runs before the app and post-stop after
// it, chrooted into the app's root as the app's user with its
// environment; a failing pre-start fails the pod with 254, a hanging one
// is killed at the timeout.
func TestFlyEventHandlers(t *testing.T) {
	vol := t.TempDir()
	os.Chmod(vol, 0o777)
	probe := "/inspect --print-user --print-env=FOO --print-cwd"
	step := func(name, needs string) []string {
		return []string{"/bin/sh", "-c", "test " + needs + " && echo " + name + " >> /vol/order; " + probe + " > /vol/" + name + ".out; touch /tmp/" + name}
	}
	run := func(a stage1test.App, ann map[string]string) stage1test.Result {
		a.Name, a.User, a.WorkingDir = "a", "1000", "/tmp"
		a.Env = map[string]string{"FOO": "bar"}
		a.Mounts = []schema.Mount{{Volume: "v", Path: "/vol"}}
		p := newPod(t, stage1test.Spec{Apps: []stage1test.App{a}, Annotations: ann,
			Volumes: []types.Volume{{Name: "v", Kind: "host", Source: vol}}})
		return p.RunPod("--net=host")
	}
	r := run(stage1test.App{PreStart: step("pre-start", "! -e /tmp/main"), Exec: step("main", "-e /tmp/pre-start"),
		PostStop: step("post-stop", "-e /tmp/main")}, nil)
	if r.Code != 0 {
		t.Fatalf("exit %d\nstderr %s", r.Code, r.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(vol, "order")); string(b) != "pre-start\nmain\npost-stop\n" {
		t.Errorf("order of the runs: %q", b)
	}
	main, _ := os.ReadFile(filepath.Join(vol, "main.out"))
	if !strings.Contains(string(main), "uid: 1000") || !strings.Contains(string(main), "FOO=bar") || !strings.Contains(string(main), "cwd: /tmp") {
		t.Errorf("the app's view: %s", main)
	}
	for _, h := range []string{"pre-start", "post-stop"} {
		if b, _ := os.ReadFile(filepath.Join(vol, h+".out")); string(b) != string(main) {
			t.Errorf("%s handler's view %q differs from the app's %q", h, b, main)
		}
	}

	r = run(stage1test.App{PreStart: []string{"/bin/sh", "-c", "exit 3"}, Exec: []string{"/bin/sh", "-c", "touch /vol/main-ran"}}, nil)
	if r.Code != 254 || !strings.Contains(r.Stderr, `rkt: app a: pre-start event handler ["/bin/sh" "-c" "exit 3"] failed with exit status 3`) {
		t.Errorf("failing pre-start: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(vol, "main-ran")); err == nil {
		t.Error("the app ran after its pre-start handler failed")
	}

	start := time.Now()
	r = run(stage1test.App{Exec: []string{"/bin/true"}, PostStop: []string{"/bin/sh", "-c", "sleep 60 & sleep 60"}},
		map[string]string{"rkt.dev/event-handler-timeout": "1s"})
	if d := time.Since(start); r.Code != 254 || !strings.Contains(r.Stderr, "post-stop event handler") ||
		!strings.Contains(r.Stderr, "did not finish within 1s") || d > 15*time.Second {
		t.Errorf("hanging post-stop: exit %d after %v, stderr %q", r.Code, d, r.Stderr)
	}
}
