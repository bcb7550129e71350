package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

// Functional tests of the image manifest's event handlers (appc
// pre-start and post-stop) with the real default stage1 and the fly
// flavor.

// handlersImage is an inspect image whose app is user 1000 in /tmp with
// FOO=bar, mounting volume "log" on /log; its pre-start handler writes
// /prestart in the app's root (as the ACE validator's does), and every
// step appends its name to /log/order and its view of itself to
// /log/NAME.out.
func handlersImage(e *realEnv, name string, pre, post string) string {
	probe := "/inspect --print-user --print-env=FOO --print-env=AC_APP_NAME --print-cwd --print-no-new-privs --print-seccomp --print-caps-pid=0"
	step := func(name, check, then string) []string {
		return []string{"/bin/sh", "-c", "test " + check + " && echo " + name + " >> /log/order; " + probe + " > /log/" + name + ".out; " + then}
	}
	a := e.inspectACI(name)
	a.Image.Exec = step("main", "-e /tmp/prestart -a ! -e /tmp/poststop", "touch /tmp/main")
	a.Image.User, a.Image.Group, a.Image.WorkingDir = "1000", "1000", "/tmp"
	a.Image.Env = map[string]string{"FOO": "bar"}
	a.Image.MountPoints = []testutils.MountPoint{{Name: "log", Path: "/log"}}
	if pre == "" {
		pre = strings.Join(step("pre-start", "! -e /tmp/main", "touch /tmp/prestart"), "\x00")
	}
	if post == "" {
		post = strings.Join(step("post-stop", "-e /tmp/prestart -a -e /tmp/main", "touch /tmp/poststop"), "\x00")
	}
	a.Image.EventHandlers = []testutils.EventHandler{
		{Name: "pre-start", Exec: strings.Split(pre, "\x00")},
		{Name: "post-stop", Exec: strings.Split(post, "\x00")},
	}
	return e.writeImage(strings.ReplaceAll(name, "/", "-")+".aci", a)
}

func logVolume(t *testing.T) (string, string) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir, "--volume=log,kind=host,source=" + dir
}

// TestRunEventHandlers: pre-start runs before the app and post-stop after
// it, in the app's root (a file pre-start writes there is the app's and
// post-stop's), with the app's user, environment, working directory,
// capabilities, no_new_privs and seccomp filter; in both flavors.
func TestRunEventHandlers(t *testing.T) {
	e := newRealEnv(t)
	img := handlersImage(e, "rkt.dev/handlers", "", "")
	for _, flavor := range []string{"default", "fly"} {
		t.Run(flavor, func(t *testing.T) {
			log, vol := logVolume(t)
			args := []string{vol, img}
			if flavor == "fly" {
				requireStage1Beside(t, e.Bin, "stage1-fly.aci")
				args = append([]string{"--stage1-from-dir=stage1-fly.aci"}, args...)
			}
			uuid, r := e.runUUID(args...)
			if r.Exit != 0 {
				t.Fatalf("%s", describeResult(args, r))
			}
			if b, _ := os.ReadFile(filepath.Join(log, "order")); string(b) != "pre-start\nmain\npost-stop\n" {
				t.Errorf("order of the runs: %q, want pre-start, main, post-stop", b)
			}
			main, _ := os.ReadFile(filepath.Join(log, "main.out"))
			for _, s := range []string{"uid: 1000", "gid: 1000", "FOO=bar", "AC_APP_NAME=handlers", "cwd: /tmp"} {
				if !strings.Contains(string(main), s) {
					t.Errorf("the app's view lacks %q:\n%s", s, main)
				}
			}
			for _, h := range []string{"pre-start", "post-stop"} {
				if b, _ := os.ReadFile(filepath.Join(log, h+".out")); string(b) != string(main) {
					t.Errorf("%s handler's view differs from the app's:\n%s\napp's:\n%s", h, b, main)
				}
			}
			upper := filepath.Join(e.podDir(uuid), "overlay", "handlers", "upper", "tmp")
			for _, f := range []string{"prestart", "main", "poststop"} {
				if _, err := os.Stat(filepath.Join(upper, f)); err != nil {
					t.Errorf("/tmp/%s is not in the app's root: %v", f, err)
				}
			}
		})
	}
}

// TestRunEventHandlerFailures: a failing pre-start fails the pod with 254
// and a message naming the app and the handler, and the app does not run;
// a hanging handler is killed at the timeout (--pod-annotation); post-stop
// runs after an app that failed, whose exit code stays the pod's.
func TestRunEventHandlerFailures(t *testing.T) {
	e := newRealEnv(t)
	log, vol := logVolume(t)
	failing := handlersImage(e, "rkt.dev/failing-pre-start", "/bin/sh\x00-c\x00echo no database >&2; exit 4", "")
	uuid, r := e.runUUID(vol, failing)
	want := `rkt: app failing-pre-start: pre-start event handler ["/bin/sh" "-c" "echo no database >&2; exit 4"] failed with exit status 4`
	if r.Exit != 254 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "no database") {
		t.Errorf("failing pre-start: want exit 254 and %q\n%s", want, describeResult([]string{"run"}, r))
	}
	if st := e.podStatus(uuid); st["app-failing-pre-start"] != "254" {
		t.Errorf("status %v, want app-failing-pre-start=254", st)
	}
	if b, _ := os.ReadFile(filepath.Join(log, "order")); len(b) != 0 {
		t.Errorf("the app or its post-stop handler ran after the failed pre-start: %q", b)
	}

	hanging := handlersImage(e, "rkt.dev/hanging-pre-start", "/bin/sh\x00-c\x00sleep 100 & sleep 100", "")
	start := time.Now()
	r = e.run("--pod-annotation=rkt.dev/event-handler-timeout=1s", vol, hanging)
	took := time.Since(start)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "rkt: app hanging-pre-start: pre-start event handler") ||
		!strings.Contains(r.Stderr, "did not finish within 1s: killed") || took > 20*time.Second {
		t.Errorf("hanging pre-start: exit %d after %v, want 254 after about 1s\n%s", r.Exit, took, describeResult([]string{"run"}, r))
	}

	os.Remove(filepath.Join(log, "order"))
	img := handlersImage(e, "rkt.dev/failing-app", "", "")
	r = e.run(vol, img, "--exec=/bin/sh", "--", "-c", "touch /tmp/main; echo main >> /log/order; exit 6")
	if r.Exit != 6 {
		t.Errorf("failing app: exit %d, want its 6\n%s", r.Exit, describeResult([]string{"run"}, r))
	}
	if b, _ := os.ReadFile(filepath.Join(log, "order")); string(b) != "pre-start\nmain\npost-stop\n" {
		t.Errorf("failing app: order of the runs %q, want post-stop after the app", b)
	}
}
