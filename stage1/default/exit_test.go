package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rkt/rkt/stage1/stage1test"
)

func TestExitCodeMultiApp(t *testing.T) {
	p := newPod(t,
		app("ok", "--exit-code=0"),
		app("fails", "--sleep=0.3", "--exit-code=3"),
		app("sleeper", "--sleep=30"),
	)
	r := p.RunPod("--net=host")
	if r.Code != 3 {
		t.Fatalf("exit code %d, want 3 (the failing app's)\nstderr: %s", r.Code, r.Stderr)
	}
	for app, want := range map[string]int{"ok": 0, "fails": 3, "sleeper": 143} {
		if c, ok := p.Status(app); !ok || c != want {
			t.Errorf("app %s: status %d (recorded: %v), want %d", app, c, ok, want)
		}
	}
	if !strings.Contains(r.Stdout, "inspect: got SIGTERM") {
		t.Errorf("the sleeper was not sent SIGTERM: stdout %q", r.Stdout)
	}
}

func TestExitCodeAllSucceed(t *testing.T) {
	p := newPod(t, app("a", "--sleep=0.1"), app("b", "--print-msg=b"))
	if r := p.RunPod("--net=host"); r.Code != 0 {
		t.Fatalf("exit code %d, want 0\nstderr: %s", r.Code, r.Stderr)
	}
}

func TestExecFailures(t *testing.T) {
	requireRoot(t)
	// An image with a script whose interpreter is missing and a file that
	// is not executable, on top of the shared root.
	extra := t.TempDir()
	if err := os.WriteFile(filepath.Join(extra, "script"), []byte("#!/no/such/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "data"), []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		exec string
		code int
		msg  string
	}{
		{"/no/such/binary", 127, "exec /no/such/binary: no such file in the app's image"},
		{"/script", 127, "its interpreter (from its #! line) /no/such/sh is missing"},
		{"/data", 126, "exec /data: not executable (mode 0644)"},
		{"nosuchcmd", 127, "exec nosuchcmd: not found in the app's PATH"},
	} {
		a := stage1testApp("a", c.exec)
		a.Rootfs = extra + "\n" + rootfs // two layers: extra above the shared root
		p := newPod(t, a)
		r := p.RunPod("--net=host")
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) {
			t.Errorf("exec %s: exit %d, stderr %q; want %d and %q", c.exec, r.Code, r.Stderr, c.code, c.msg)
		}
		if st, _ := p.Status("a"); st != c.code {
			t.Errorf("exec %s: status file %d, want %d", c.exec, st, c.code)
		}
	}
}

func TestPodFiles(t *testing.T) {
	p := newPod(t, app("a", "--print-pid", "--print-env=AC_APP_NAME", "--print-env=PATH", "--print-env=FOO", "--print-env=HOME"))
	r := p.RunPod("--net=host")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(p.ReadFile("pid")))
	if err != nil || pid <= 1 {
		t.Errorf("pid file %q", p.ReadFile("pid"))
	}
	if sub := p.ReadFile("subcgroup"); !strings.HasSuffix(sub, "/rkt-"+p.UUID) {
		t.Errorf("subcgroup %q does not end in rkt-%s", sub, p.UUID)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "stage1/rootfs/rkt/status/a-started")); err != nil {
		t.Errorf("no start marker: %v", err)
	}
	if link, _ := os.Readlink(filepath.Join(p.Dir, "stage1/rootfs/rkt/supervisor-status")); link != "ready" {
		t.Errorf("supervisor-status = %q, want a link to ready", link)
	}
	if ap, err := strconv.Atoi(strings.TrimSpace(p.ReadFile("stage1/rootfs/rkt/app-pid/a"))); err != nil || ap <= 1 || ap == pid {
		t.Errorf("app-pid file %q (pod pid %d)", p.ReadFile("stage1/rootfs/rkt/app-pid/a"), pid)
	}
	// In the pod's PID namespace the supervisor is 1 and its threads
	// take the next few numbers.
	if v, _ := stage1test.Value(r.Stdout, "pid"); v == "" || v == "1" || len(v) > 2 {
		t.Errorf("app pid in the pod = %q, want a small number above 1", v)
	}
	for _, want := range []string{"AC_APP_NAME=a", "PATH=/usr/local/sbin:", "FOO is unset", "HOME=/root"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("environment: no %q in %q", want, r.Stdout)
		}
	}
	env := p.ReadFile("stage1/rootfs/rkt/env/a")
	if !strings.Contains(env, "AC_APP_NAME=a\x00") {
		t.Errorf("env file %q", env)
	}
	// Root-only: an app's environment may hold secrets (its
	// AC_METADATA_URL token, --set-env values).
	for _, f := range []string{"stage1/rootfs/rkt/env/a", "stage1/rootfs/rkt/enter/a"} {
		if fi, err := os.Stat(filepath.Join(p.Dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, fi.Mode(), err)
		}
	}
}

// TestNamespaces: the apps share the pod's PID, IPC, UTS (and here the
// host's network) namespaces, each has its own mount namespace.
func TestNamespaces(t *testing.T) {
	flags := []string{"--print-pidns", "--print-ipcns", "--print-utsns", "--print-mntns", "--print-netns"}
	a := app("a", append(flags, "--print-msg=A")...)
	b := app("b", append([]string{"--sleep=0.2"}, flags...)...)
	p := newPod(t, a, b)
	r := p.RunPod("--net=host")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	// In a pod of two apps, each line on stdout begins with its app's
	// name.
	var outA, outB string
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if rest, ok := strings.CutPrefix(l, "a: "); ok {
			outA += rest + "\n"
		} else if rest, ok := strings.CutPrefix(l, "b: "); ok {
			outB += rest + "\n"
		} else {
			t.Errorf("a line of no app: %q", l)
		}
	}
	if strings.Count(outA, "\n") != 6 || strings.Count(outB, "\n") != 5 {
		t.Fatalf("output %q", r.Stdout)
	}
	host := func(ns string) string {
		l, _ := os.Readlink("/proc/self/ns/" + ns)
		return l
	}
	for _, ns := range []string{"pid", "ipc", "uts", "mnt", "net"} {
		va, _ := stage1test.Value(outA, ns+"ns")
		vb, _ := stage1test.Value(outB, ns+"ns")
		switch ns {
		case "mnt":
			if va == vb || va == host(ns) {
				t.Errorf("mount namespaces: a %s, b %s, host %s", va, vb, host(ns))
			}
		case "net":
			if va != vb || va != host(ns) {
				t.Errorf("--net=host: a %s, b %s, host %s", va, vb, host(ns))
			}
		default:
			if va != vb || va == host(ns) {
				t.Errorf("%s namespaces: a %s, b %s, host %s", ns, va, vb, host(ns))
			}
		}
	}
}
