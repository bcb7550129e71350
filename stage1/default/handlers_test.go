package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/stage1/stage1test"
)

// handlerPod runs apps with a shared host volume at /vol (world-writable,
// so that apps of any user can leave their traces there) and the pod
// annotations ann; it returns the pod, its result and the volume's
// directory.
func handlerPod(t *testing.T, ann map[string]string, apps ...stage1test.App) (*stage1test.Pod, stage1test.Result, string) {
	t.Helper()
	requireRoot(t)
	vol := t.TempDir()
	if err := os.Chmod(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	for i := range apps {
		apps[i].Mounts = append(apps[i].Mounts, schema.Mount{Volume: "vol", Path: "/vol"})
	}
	p := stage1test.NewPod(t, binDir, stage1test.Spec{
		Apps:        apps,
		Volumes:     []types.Volume{{Name: "vol", Kind: "host", Source: vol}},
		Annotations: ann,
	})
	return p, p.RunPod("--net=host"), vol
}

func readVol(t *testing.T, vol, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vol, name))
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return string(b)
}

// TestEventHandlers: pre-start runs before the app and post-stop after
// it, each in the app's root (pre-start's file in the root is there for
// the app and post-stop) with the app's user, environment, working
// directory, capabilities, no_new_privs, seccomp filter and namespaces
// (the same lines as the app's own inspect).
func TestEventHandlers(t *testing.T) {
	probe := "/inspect --print-user --print-groups --print-env=FOO --print-env=AC_APP_NAME --print-env=HOME --print-cwd" +
		" --print-no-new-privs --print-seccomp --print-caps-pid=0 --print-pidns --print-netns --print-oom-score-adj"
	step := func(name, needs string) []string {
		return []string{"/bin/sh", "-c", "test " + needs + " && echo " + name + " >> /vol/order; " +
			probe + " > /vol/" + name + ".out; touch /tmp/" + name}
	}
	a := stage1testApp("a")
	a.User, a.Group, a.SupplementaryGIDs = "1000", "1000", []int{1001}
	a.WorkingDir = "/tmp"
	a.Env = map[string]string{"FOO": "bar"}
	a.PreStart = step("pre-start", "! -e /tmp/main")
	a.Exec = step("main", "-e /tmp/pre-start")
	a.PostStop = step("post-stop", "-e /tmp/main -a -e /tmp/pre-start")
	_, r, vol := handlerPod(t, nil, a)
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if got := readVol(t, vol, "order"); got != "pre-start\nmain\npost-stop\n" {
		t.Errorf("order of the runs: %q, want pre-start, main, post-stop", got)
	}
	main := readVol(t, vol, "main.out")
	for _, s := range []string{"uid: 1000", "gid: 1000", "groups: 1001", "FOO=bar", "AC_APP_NAME=a", "cwd: /tmp", "no_new_privs: 1", "Seccomp: 2"} {
		if !strings.Contains(main, s) {
			t.Errorf("the app's own view lacks %q:\n%s", s, main)
		}
	}
	for _, h := range []string{"pre-start", "post-stop"} {
		if got := readVol(t, vol, h+".out"); got != main {
			t.Errorf("%s handler's view differs from the app's:\n%s\napp's:\n%s", h, got, main)
		}
	}
}

// TestPreStartFailureFailsPod: a failing pre-start handler fails its app
// with 254 and a message naming the app and the handler; the app does not
// run, nor does its post-stop handler; the pod stops.
func TestPreStartFailureFailsPod(t *testing.T) {
	a := stage1testApp("a", "/bin/sh", "-c", "touch /vol/main-ran")
	a.PreStart = []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}
	a.PostStop = []string{"/bin/sh", "-c", "touch /vol/post-stop-ran"}
	other := app("other", "--sleep=30")
	start := time.Now()
	p, r, vol := handlerPod(t, nil, a, other)
	if r.Code != 254 {
		t.Fatalf("exit %d, want 254\nstderr %s", r.Code, r.Stderr)
	}
	want := `rkt: app a: pre-start event handler ["/bin/sh" "-c" "echo oops >&2; exit 3"] failed with exit status 3`
	if !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "oops") {
		t.Errorf("stderr %q lacks %q and the handler's own output", r.Stderr, want)
	}
	if c, _ := p.Status("a"); c != 254 {
		t.Errorf("app a's status %d, want 254", c)
	}
	if c, _ := p.Status("other"); c != 143 {
		t.Errorf("app other's status %d, want 143 (stopped with the pod)", c)
	}
	for _, f := range []string{"main-ran", "post-stop-ran"} {
		if _, err := os.Stat(filepath.Join(vol, f)); err == nil {
			t.Errorf("%s: it ran after the failed pre-start", f)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the pod took %v to fail", d)
	}
}

// TestPreStartExecFailure: a handler whose command is missing fails the
// app with the launcher's reason.
func TestPreStartExecFailure(t *testing.T) {
	a := app("a", "--print-msg=main")
	a.PreStart = []string{"/no/such/handler"}
	_, r, _ := handlerPod(t, nil, a)
	if r.Code != 254 || !strings.Contains(r.Stderr, "rkt: app a: pre-start event handler: exec /no/such/handler: no such file") {
		t.Errorf("exit %d, stderr %q", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stdout, "main") {
		t.Errorf("the app ran: %q", r.Stdout)
	}
}

// TestHandlerTimeout: hanging handlers are killed at the timeout (the pod
// annotation), with what they started; the pod fails with 254.
func TestHandlerTimeout(t *testing.T) {
	ann := map[string]string{"rkt.dev/event-handler-timeout": "1s"}
	for _, c := range []struct {
		name string
		set  func(*stage1test.App, []string)
	}{
		{"pre-start", func(a *stage1test.App, h []string) { a.PreStart = h }},
		{"post-stop", func(a *stage1test.App, h []string) { a.PostStop = h }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := app("a", "--print-msg=main ran")
			// A child in the background and the shell itself: both hang.
			c.set(&a, []string{"/bin/sh", "-c", "sleep 20 & sleep 20; touch /vol/survived"})
			start := time.Now()
			_, r, vol := handlerPod(t, ann, a)
			d := time.Since(start)
			if r.Code != 254 {
				t.Errorf("exit %d, want 254\nstderr %s", r.Code, r.Stderr)
			}
			want := "rkt: app a: " + c.name + " event handler"
			if !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "did not finish within 1s") {
				t.Errorf("stderr %q lacks %q ... did not finish within 1s", r.Stderr, want)
			}
			if d < time.Second || d > 15*time.Second {
				t.Errorf("the pod took %v, want the 1s timeout", d)
			}
			if ran := strings.Contains(r.Stdout, "main ran"); ran != (c.name == "post-stop") {
				t.Errorf("the app ran: %v, stdout %q", ran, r.Stdout)
			}
			if _, err := os.Stat(filepath.Join(vol, "survived")); err == nil {
				t.Error("the handler survived its timeout")
			}
		})
	}
}

// TestPostStopAfterFailure: post-stop handlers run after an app that
// failed and after an app the pod stopped; the pod's exit code stays the
// failing app's. A failing post-stop handler of a successful pod makes
// the pod's exit code 254.
func TestPostStopAfterFailure(t *testing.T) {
	fails := app("fails", "--sleep=0.3", "--exit-code=7")
	fails.PostStop = []string{"/bin/sh", "-c", "touch /vol/fails-post-stop"}
	sleeper := app("sleeper", "--sleep=30")
	sleeper.PostStop = []string{"/bin/sh", "-c", "touch /vol/sleeper-post-stop"}
	p, r, vol := handlerPod(t, nil, fails, sleeper)
	if r.Code != 7 {
		t.Fatalf("exit %d, want 7\nstderr %s", r.Code, r.Stderr)
	}
	if c, _ := p.Status("sleeper"); c != 143 {
		t.Errorf("sleeper's status %d, want 143", c)
	}
	for _, f := range []string{"fails-post-stop", "sleeper-post-stop"} {
		if _, err := os.Stat(filepath.Join(vol, f)); err != nil {
			t.Errorf("post-stop handler did not run: %v", err)
		}
	}

	ok := app("ok")
	ok.PostStop = []string{"/bin/sh", "-c", "exit 5"}
	p, r, _ = handlerPod(t, nil, ok)
	if r.Code != 254 || !strings.Contains(r.Stderr, `rkt: app ok: post-stop event handler ["/bin/sh" "-c" "exit 5"] failed with exit status 5`) {
		t.Errorf("failing post-stop: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if c, _ := p.Status("ok"); c != 0 {
		t.Errorf("app ok's status %d, want its own 0", c)
	}
}
