package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Functional tests of the default stage1's isolation through the rkt CLI:
// namespaces, cgroup limits, capabilities, seccomp, /proc and /sys
// protection, and the --insecure-options that relax them. Helpers are in
// rkt_pod_real_test.go.

// hostNS returns the host's (the test's) namespace link for ns.
func hostNS(t testing.TB, ns string) string {
	t.Helper()
	v, err := os.Readlink("/proc/self/ns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestIsolationNamespaces: the apps of a pod share pid, uts, ipc and
// network namespaces that are not the host's, each has its own mount
// namespace; --net=none leaves only lo, --net=host is the host's network;
// the hostname is rkt-<uuid> or --hostname.
func TestIsolationNamespaces(t *testing.T) {
	e := newRealEnv(t)
	script := "/inspect --print-netns --print-ipcns --print-pidns --print-mntns --print-utsns --print-hostname --print-iface-count" + prefixApp
	uuid, r := e.runUUID(append(append([]string{"--net=none", e.img, "--name=a"}, shExec(script)...), append([]string{e.img, "--name=b"}, shExec(script)...)...)...)
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult([]string{"run", "two apps"}, r))
	}
	apps := byApp(r.Stdout)
	a, b := apps["a"], apps["b"]
	if a == "" || b == "" {
		t.Fatalf("output of apps a and b not found in %q", r.Stdout)
	}
	for _, ns := range []string{"pid", "uts", "ipc", "net", "mnt"} {
		va, oka := inspectValue(a, ns+"ns")
		vb, okb := inspectValue(b, ns+"ns")
		if !oka || !okb {
			t.Errorf("%sns missing: a %q, b %q", ns, a, b)
			continue
		}
		if host := hostNS(t, ns); va == host || vb == host {
			t.Errorf("%s namespace is the host's (%s): a %s, b %s", ns, host, va, vb)
		}
		if shared := ns != "mnt"; shared != (va == vb) {
			t.Errorf("%s namespace: a %s, b %s; want them shared: %v", ns, va, vb, shared)
		}
	}
	for name, out := range apps {
		wantValue(t, out, "hostname", "rkt-"+uuid)
		wantValue(t, out, "interfaces", "1") // lo only, with --net=none
		if name != "a" && name != "b" {
			t.Errorf("output of an unknown app %q", name)
		}
	}

	out := e.runOK("--net=host", "--hostname=custom-host", e.img, "--exec=/inspect", "--", "--print-netns", "--print-pidns", "--print-hostname")
	wantValue(t, out, "netns", hostNS(t, "net"))
	wantValue(t, out, "hostname", "custom-host")
	if v, _ := inspectValue(out, "pidns"); v == hostNS(t, "pid") {
		t.Errorf("--net=host pod shares the host's pid namespace")
	}
	if h, _ := os.Hostname(); h == "custom-host" {
		t.Errorf("--hostname changed the host's hostname")
	}
}

// TestIsolationCgroupLimits: --cpu, --memory, --cpu-shares, --pids-limit
// and --oom-score-adj as the app sees them; bad values fail with 254.
func TestIsolationCgroupLimits(t *testing.T) {
	e := newRealEnv(t)
	out := e.runOK(e.img, "--cpu=750m", "--memory=128M", "--cpu-shares=512", "--pids-limit=100", "--oom-score-adj=500",
		"--", "--print-cpuquota", "--print-memorylimit", "--print-cpushares", "--print-pidslimit", "--print-oom-score-adj")
	wantValue(t, out, "cpu quota", "75000/100000")
	wantValue(t, out, "memory limit", "128000000")
	if _, v1 := inspectValue(out, "cpu shares"); v1 {
		wantValue(t, out, "cpu shares", "512")
	} else {
		wantValue(t, out, "cpu weight", "20") // 512 shares on cgroup v2: 1 + (512-2)*9999/262142
	}
	wantValue(t, out, "pids limit", "100")
	wantValue(t, out, "oom_score_adj", "500")

	out = e.runOK(e.img, "--cpu=2", "--memory=64Mi", "--", "--print-cpuquota", "--print-memorylimit", "--print-pidslimit")
	wantValue(t, out, "cpu quota", "200000/100000")
	wantValue(t, out, "memory limit", fmt.Sprint(64<<20))
	wantValue(t, out, "pids limit", "4096") // the default

	before := len(e.listPods())
	for _, bad := range []string{"--cpu=lots", "--memory=-5M", "--memory=12XB", "--cpu-shares=abc", "--oom-score-adj=2000", "--pids-limit=0"} {
		flag, _, _ := strings.Cut(bad, "=")
		r := e.run(e.img, bad)
		if r.Exit != 254 || !strings.Contains(r.Stderr, flag) {
			t.Errorf("%s: %s", bad, describeResult([]string{"run", bad}, r))
		}
	}
	if after := len(e.listPods()); after != before {
		t.Errorf("runs with bad isolator values left pods: %d listed, %d before", after, before)
	}
}

// capMaskOf is the /proc/PID/status mask of capability numbers.
func capMaskOf(caps ...int) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}

// appcDefaultCaps is the appc spec's default capability set.
var appcDefaultCaps = []int{
	unix.CAP_AUDIT_WRITE, unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID,
	unix.CAP_FOWNER, unix.CAP_KILL, unix.CAP_MKNOD, unix.CAP_NET_RAW,
	unix.CAP_NET_BIND_SERVICE, unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SETPCAP,
	unix.CAP_SETFCAP, unix.CAP_SYS_CHROOT,
}

// without returns caps minus drop.
func without(caps []int, drop ...int) []int {
	var out []int
	for _, c := range caps {
		keep := true
		for _, d := range drop {
			keep = keep && c != d
		}
		if keep {
			out = append(out, c)
		}
	}
	return out
}

// hostCapBnd is the test process's capability bounding set.
func hostCapBnd(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

// TestIsolationCapabilities: a root app gets the appc default set,
// adjusted by --caps-retain/--caps-remove; a non-root app gets no
// capabilities and no_new_privs; --insecure-options=capabilities keeps the
// host's bounding set and says so.
func TestIsolationCapabilities(t *testing.T) {
	e := newRealEnv(t)
	caps := []string{"--", "--print-caps-pid=0", "--print-no-new-privs"}
	def := capMaskOf(appcDefaultCaps...)
	out := e.runOK(append([]string{e.img}, caps...)...)
	for _, set := range []string{"CapBnd", "CapEff", "CapPrm"} {
		wantValue(t, out, set, def)
	}
	wantValue(t, out, "CapAmb", capMaskOf())

	out = e.runOK(append([]string{e.img, "--caps-retain=CAP_CHOWN,CAP_KILL"}, caps...)...)
	wantValue(t, out, "CapBnd", capMaskOf(unix.CAP_CHOWN, unix.CAP_KILL))
	wantValue(t, out, "CapEff", capMaskOf(unix.CAP_CHOWN, unix.CAP_KILL))

	out = e.runOK(append([]string{e.img, "--caps-remove=CAP_NET_RAW,CAP_MKNOD"}, caps...)...)
	wantValue(t, out, "CapBnd", capMaskOf(without(appcDefaultCaps, unix.CAP_NET_RAW, unix.CAP_MKNOD)...))
	wantValue(t, out, "CapEff", capMaskOf(without(appcDefaultCaps, unix.CAP_NET_RAW, unix.CAP_MKNOD)...))

	out = e.runOK(append([]string{e.img, "--user=1000", "--group=1000"}, caps...)...)
	wantValue(t, out, "no_new_privs", "1")
	wantValue(t, out, "CapEff", capMaskOf())
	wantValue(t, out, "CapPrm", capMaskOf())

	args := append([]string{"--insecure-options=image,capabilities", "run", hostNet, e.img}, caps...)
	r := e.Run(args...)
	if r.Exit != 0 || !strings.Contains(r.Stderr, "warning") || !strings.Contains(r.Stderr, "--insecure-options=capabilities") {
		t.Errorf("%s", describeResult(args, r))
	}
	wantValue(t, r.Stdout, "CapBnd", hostCapBnd(t))
}

// TestIsolationSeccompAndPaths: the default seccomp filter blocks unshare
// and /proc/sys is read-only (as /proc/sysrq-trigger, where the kernel has
// it); --insecure-options=seccomp and =paths lift each, with a warning.
func TestIsolationSeccompAndPaths(t *testing.T) {
	e := newRealEnv(t)
	script := "/inspect --print-seccomp; unshare -U /bin/true; echo unshare=$?; " +
		"/inspect --write-file=/proc/sys/kernel/domainname --content=pod; echo sysctl=$?; grep sysrq-trigger /proc/self/mountinfo; true"
	type result struct{ seccomp, unshare, sysctl string }
	want := map[string]result{
		"image":         {"2", "1", "1"},
		"image,seccomp": {"0", "0", "1"},
		"image,paths":   {"2", "1", "0"},
	}
	_, hasSysrq := os.Stat("/proc/sysrq-trigger")
	for opts, w := range want {
		args := append([]string{"--insecure-options=" + opts, "run", hostNet, e.img}, shExec(script)...)
		r := e.Run(args...)
		if r.Exit != 0 {
			t.Errorf("%s", describeResult(args, r))
			continue
		}
		got := result{}
		got.seccomp, _ = inspectValue(r.Stdout, "Seccomp")
		got.unshare = valueAfter(r.Stdout, "unshare=")
		got.sysctl = valueAfter(r.Stdout, "sysctl=")
		if got != w {
			t.Errorf("--insecure-options=%s: seccomp mode, unshare and /proc/sys write exit codes %+v, want %+v\n%s", opts, got, w, describeResult(args, r))
		}
		if w.unshare == "1" && !strings.Contains(r.Stderr, "not permitted") {
			t.Errorf("--insecure-options=%s: unshare did not fail with EPERM: %s", opts, r.Stderr)
		}
		if w.sysctl == "1" && !strings.Contains(r.Stderr, "read-only file system") {
			t.Errorf("--insecure-options=%s: /proc/sys write did not fail as read-only: %s", opts, r.Stderr)
		}
		if hasSysrq == nil && w.sysctl == "1" && !strings.Contains(r.Stdout, "/proc/sysrq-trigger ro,") {
			t.Errorf("--insecure-options=%s: /proc/sysrq-trigger is not mounted read-only:\n%s", opts, r.Stdout)
		}
		for _, o := range []string{"seccomp", "paths"} {
			if warned := strings.Contains(r.Stderr, "(--insecure-options="+o+")"); warned != strings.Contains(opts, o) {
				t.Errorf("--insecure-options=%s: warning about %s printed: %v\nstderr: %s", opts, o, warned, r.Stderr)
			}
		}
	}
	if hasSysrq != nil {
		t.Logf("this kernel has no /proc/sysrq-trigger: its protection was not checked")
	}
}

// valueAfter returns the rest of the first line of out starting with prefix.
func valueAfter(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}

// TestIsolationOOMKillIsReported: an app killed by the OOM killer exits
// 137, and rkt run's last line and rkt status say it ran out of memory;
// --memory below what anything can run in is refused.
func TestIsolationOOMKillIsReported(t *testing.T) {
	e := newRealEnv(t)
	// The shell keeps the command substitution's output in memory.
	uuid, r := e.runUUID(append([]string{e.img, "--name=hog", "--memory=16Mi"},
		shExec(`x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived ${#x}`)...)...)
	if r.Exit != 137 {
		t.Fatalf("want exit 137 (OOM-killed), got %s", describeResult([]string{"run", "hog"}, r))
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "app hog") || !strings.Contains(last, "out of memory") {
		t.Errorf("rkt run's last line %q does not name app hog and \"out of memory\"\nstderr:\n%s", last, r.Stderr)
	}
	st := e.podStatus(uuid)
	if st["app-hog"] != "137" || st["app-hog-reason"] != "out of memory" {
		t.Errorf("rkt status: app-hog=%q app-hog-reason=%q, want 137 and \"out of memory\"", st["app-hog"], st["app-hog-reason"])
	}
	// An app killed by SIGKILL for another reason is not said to be out
	// of memory.
	uuid, r = e.runUUID(append([]string{e.img, "--name=killed", "--memory=64Mi"}, shExec(`kill -9 $$`)...)...)
	if r.Exit != 137 || strings.Contains(r.Stderr, "out of memory") {
		t.Errorf("kill -9: %s", describeResult([]string{"run", "killed"}, r))
	}
	if st := e.podStatus(uuid); st["app-killed-reason"] != "" {
		t.Errorf("kill -9: rkt status says %q", st["app-killed-reason"])
	}
}
