package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/stage1/stage1test"
	"github.com/rkt/rkt/stage2"
)

// capMask is the hex mask of capability names, as /proc/PID/status shows.
func capMask(t *testing.T, names []string) string {
	t.Helper()
	nums, err := stage2.CapNumbers(names)
	if err != nil {
		t.Fatal(err)
	}
	var m uint64
	for _, n := range nums {
		m |= 1 << n
	}
	return fmt.Sprintf("%016x", m)
}

func runApp(t *testing.T, a stage1test.App, args ...string) stage1test.Result {
	t.Helper()
	p := newPod(t, a)
	r := p.RunPod(append([]string{"--net=host"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("pod failed with %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	return r
}

func want(t *testing.T, out, key, value string) {
	t.Helper()
	if v, ok := stage1test.Value(out, key); !ok || v != value {
		t.Errorf("%s: %q, want %q\noutput:\n%s", key, v, value, out)
	}
}

func TestUserAndGroup(t *testing.T) {
	a := app("a", "--print-user", "--print-groups", "--print-env=HOME", "--print-env=USER", "--print-cwd")
	a.User, a.Group, a.SupplementaryGIDs, a.WorkingDir = "user", "extra", []int{65534, 1001}, "/home/user/work"
	r := runApp(t, a)
	want(t, r.Stdout, "uid", "1000")
	want(t, r.Stdout, "gid", "1001")
	want(t, r.Stdout, "groups", "1001 65534")
	want(t, r.Stdout, "cwd", "/home/user/work")
	for _, s := range []string{"HOME=/home/user", "USER=user"} {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("no %s in %q", s, r.Stdout)
		}
	}
	num := app("b", "--print-user")
	num.User, num.Group = "4242", "4343"
	r = runApp(t, num)
	want(t, r.Stdout, "uid", "4242")
	want(t, r.Stdout, "gid", "4343")
}

func TestUserNotFound(t *testing.T) {
	a := app("a", "--print-user")
	a.User = "ghost"
	p := newPod(t, a)
	r := p.RunPod("--net=host")
	if r.Code != 254 || !strings.Contains(r.Stderr, "user ghost not found in image's /etc/passwd") {
		t.Errorf("exit %d, stderr %q", r.Code, r.Stderr)
	}
	g := app("b", "--print-user")
	g.Group = "nogroupatall"
	p = newPod(t, g)
	if r := p.RunPod("--net=host"); r.Code != 254 || !strings.Contains(r.Stderr, "group nogroupatall not found in image's /etc/group") {
		t.Errorf("exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestCapabilities(t *testing.T) {
	def := capMask(t, stage2.DefaultCapabilities)
	r := runApp(t, app("root", "--print-caps-pid=0"))
	want(t, r.Stdout, "CapBnd", def)
	want(t, r.Stdout, "CapEff", def)
	want(t, r.Stdout, "CapInh", "0000000000000000")

	u := app("user", "--print-caps-pid=0")
	u.User = "1000"
	r = runApp(t, u)
	want(t, r.Stdout, "CapBnd", def)
	want(t, r.Stdout, "CapEff", "0000000000000000")
	want(t, r.Stdout, "CapPrm", "0000000000000000")

	ret := app("retain", "--print-caps-pid=0")
	ret.Isolators = []string{`{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_ADMIN","CAP_CHOWN"]}}`}
	r = runApp(t, ret)
	want(t, r.Stdout, "CapBnd", capMask(t, []string{"CAP_NET_ADMIN", "CAP_CHOWN"}))

	rm := app("remove", "--print-caps-pid=0")
	rm.Isolators = []string{`{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_NET_RAW"]}}`}
	r = runApp(t, rm)
	var rest []string
	for _, c := range stage2.DefaultCapabilities {
		if c != "CAP_NET_RAW" {
			rest = append(rest, c)
		}
	}
	want(t, r.Stdout, "CapBnd", capMask(t, rest))

	r = runApp(t, app("all", "--print-caps-pid=0"), "--disable-capabilities-restriction")
	if v, _ := stage1test.Value(r.Stdout, "CapBnd"); v == def {
		t.Errorf("--disable-capabilities-restriction kept the default set %s", v)
	}
}

func TestNoNewPrivs(t *testing.T) {
	r := runApp(t, app("root", "--print-no-new-privs"))
	want(t, r.Stdout, "no_new_privs", "0")
	u := app("user", "--print-no-new-privs")
	u.User = "1000"
	r = runApp(t, u)
	want(t, r.Stdout, "no_new_privs", "1")
	iso := app("iso", "--print-no-new-privs")
	iso.Isolators = []string{`{"name":"os/linux/no-new-privileges","value":true}`}
	r = runApp(t, iso)
	want(t, r.Stdout, "no_new_privs", "1")
}

func TestSeccomp(t *testing.T) {
	r := runApp(t, app("a", "--print-seccomp"))
	want(t, r.Stdout, "Seccomp", "2")
	// unshare(CLONE_NEWUSER) needs no capability: only seccomp stops it.
	sh := stage1testApp("sh", "/bin/sh", "-c", "unshare -U true && echo unshared || echo blocked")
	p := newPod(t, sh)
	if r := p.RunPod("--net=host"); !strings.Contains(r.Stdout, "blocked") || !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("unshare in the default filter: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	p = newPod(t, sh)
	if r := p.RunPod("--net=host", "--disable-seccomp"); !strings.Contains(r.Stdout, "unshared") {
		t.Errorf("unshare with --disable-seccomp: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	r = runApp(t, app("off", "--print-seccomp"), "--disable-seccomp")
	want(t, r.Stdout, "Seccomp", "0")
	// A remove set with an errno replaces the default filter.
	rm := stage1testApp("rm", "/bin/sh", "-c", "unshare -U true && echo unshared; mkdir /x || echo mkdir-blocked")
	rm.Isolators = []string{`{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir","mkdirat"],"errno":"EACCES"}}`}
	p = newPod(t, rm)
	if r := p.RunPod("--net=host"); !strings.Contains(r.Stdout, "unshared") || !strings.Contains(r.Stdout, "mkdir-blocked") || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("remove set: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}

func TestPaths(t *testing.T) {
	// /proc/sys is read-only (this kernel has no /proc/sysrq-trigger);
	// the hostname is the pod's own, so writing it would be harmless.
	w := app("a", "--write-file=/proc/sys/kernel/hostname", "--content=x")
	p := newPod(t, w)
	if r := p.RunPod("--net=host"); r.Code == 0 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("write to /proc/sys: exit %d stderr %q", r.Code, r.Stderr)
	}
	p = newPod(t, w)
	if r := p.RunPod("--net=host", "--disable-paths"); r.Code != 0 {
		t.Errorf("write to /proc/sys with --disable-paths: exit %d stderr %q", r.Code, r.Stderr)
	}
	sh := stage1testApp("sh", "/bin/sh", "-c",
		"echo 1 > /proc/sysrq-trigger || echo sysrq-blocked; ls /sys/firmware | wc -l; cat /proc/timer_list | wc -c; touch /sys/x || echo sys-ro; ls /dev | tr '\\n' ' '")
	r := runApp(t, sh)
	for _, s := range []string{"sysrq-blocked", "0\n0\n", "sys-ro", "full null ptmx pts random shm stderr stdin stdout tty urandom zero"} {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("no %q in %q", s, r.Stdout)
		}
	}
	// A device outside the pod's /dev cannot even be made (the device
	// allowlist); a device node of the allowlist made in the app cannot
	// be opened (nodev everywhere).
	mk := stage1testApp("mk", "/bin/sh", "-c", "mknod /dev/mem2 c 1 1 || echo mknod-blocked; mknod /tmp/null2 c 1 3 && (head -c1 /tmp/null2 || echo dev-blocked)")
	r = runApp(t, mk)
	for _, s := range []string{"mknod-blocked", "dev-blocked"} {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("no %q: a device made by the app worked: %q %q", s, r.Stdout, r.Stderr)
		}
	}
}

func TestHostnameAndHosts(t *testing.T) {
	a := app("a", "--print-hostname", "--read-file=/etc/hosts")
	p := newPod(t, a)
	r := p.RunPod("--net=host")
	want(t, r.Stdout, "hostname", "rkt-"+p.UUID)
	if !strings.Contains(r.Stdout, "127.0.0.1\tlocalhost localhost.localdomain rkt-"+p.UUID) {
		t.Errorf("/etc/hosts: %q", r.Stdout)
	}
	r = runApp(t, app("b", "--print-hostname"), "--hostname=web1")
	want(t, r.Stdout, "hostname", "web1")
}

func TestReadOnlyRootFS(t *testing.T) {
	a := app("a", "--write-file=/x", "--content=y")
	a.ReadOnlyRootFS = true
	p := newPod(t, a)
	if r := p.RunPod("--net=host"); r.Code == 0 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("write to a read-only root: exit %d stderr %q", r.Code, r.Stderr)
	}
	b := app("b", "--write-file=/x", "--content=y")
	p = newPod(t, b)
	if r := p.RunPod("--net=host"); r.Code != 0 {
		t.Fatalf("write to the root: exit %d stderr %q", r.Code, r.Stderr)
	}
	// The write went to the app's upper layer, not the image.
	if got := p.ReadFile("overlay/b/upper/x"); got != "y" {
		t.Errorf("upper layer has %q", got)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "x")); err == nil {
		t.Error("the write reached the image's tree")
	}
}

// TestProcSelfExe makes sure an app cannot overwrite the stage1 binaries
// through /proc/1/exe (the supervisor) (CVE-2019-5736).
func TestProcSelfExe(t *testing.T) {
	requireRoot(t)
	bins := []string{"init", "stage1", "stage2"}
	before := map[string][]byte{}
	for _, b := range bins {
		data, err := os.ReadFile(filepath.Join(binDir, b))
		if err != nil {
			t.Fatal(err)
		}
		before[b] = data
	}
	script := "readlink /proc/1/exe; echo pwned > /proc/1/exe && echo WROTE; " +
		"exec 3<>/proc/1/exe && echo OPENED; cat /proc/1/exe > /dev/null && echo READ; true"
	for _, args := range [][]string{nil, {"--disable-capabilities-restriction", "--disable-seccomp", "--disable-paths"}} {
		p := newPod(t, stage1testApp("a", "/bin/sh", "-c", script))
		r := p.RunPod(append([]string{"--net=host"}, args...)...)
		if strings.Contains(r.Stdout, "WROTE") || strings.Contains(r.Stdout, "OPENED") {
			t.Errorf("%v: /proc/1/exe was opened for writing: %q %q", args, r.Stdout, r.Stderr)
		}
		// By default the supervisor is not dumpable: the app cannot even
		// read the link. With every restriction lifted (CAP_SYS_PTRACE) it
		// may see the path, but the write above must still fail (the
		// binary is busy while the pod runs).
		if args == nil && (strings.Contains(r.Stdout, "/init") || strings.Contains(r.Stdout, binDir)) {
			t.Errorf("%v: /proc/1/exe is readable: %q", args, r.Stdout)
		}
	}
	for _, b := range bins {
		after, err := os.ReadFile(filepath.Join(binDir, b))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before[b], after) {
			t.Fatalf("the stage1 binary %s changed: sha256 %x -> %x", b, sha256.Sum256(before[b]), sha256.Sum256(after))
		}
	}
}

// TestLauncherReadOnly: in the pod's mount namespace, the launcher binary
// the apps are started from is a read-only bind, so a process of the pod
// that runs it again (an app that is a "#!/proc/self/exe" script) cannot
// open it for writing through /proc/PID/exe. The host's own path to it
// stays writable (for upgrades of the image store's copy by rkt itself).
func TestLauncherReadOnly(t *testing.T) {
	requireRoot(t)
	p := newPod(t, app("a", "--print-msg=up", "--sleep=30"))
	s := startPod(t, p, nil)
	waitOutput(t, s, "up")
	pid := strings.TrimSpace(p.ReadFile("pid"))
	launcher := filepath.Join(binDir, "stage2")
	f, err := os.OpenFile("/proc/"+pid+"/root"+launcher, os.O_WRONLY, 0)
	if err == nil {
		f.Close()
		t.Errorf("the launcher %s opened for writing in the pod's mount namespace", launcher)
	} else if !errors.Is(err, syscall.EROFS) {
		t.Errorf("open the launcher for writing in the pod's mount namespace: %v, want EROFS", err)
	}
	if f, err := os.OpenFile(launcher, os.O_WRONLY, 0); err != nil {
		t.Errorf("the host's path to the launcher: %v", err)
	} else {
		f.Close()
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait(t, 10*time.Second)
}

// TestSeccompRetainSet: an allow list runs the app; calls outside it get
// the errno.
func TestSeccompRetainSet(t *testing.T) {
	a := stage1testApp("a", "/bin/sh", "-c", "unshare -U true || echo blocked; echo ran")
	a.Isolators = []string{`{"name":"os/linux/seccomp-retain-set","value":{"set":["@docker/default-whitelist"],"errno":"ENOSYS"}}`}
	r := runApp(t, a)
	if !strings.Contains(r.Stdout, "blocked") || !strings.Contains(r.Stdout, "ran") || !strings.Contains(r.Stderr, "Function not implemented") {
		t.Errorf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}
