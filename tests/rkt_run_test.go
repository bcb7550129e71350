package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

// Functional tests of `rkt run` with the real default stage1: exit codes,
// multi-app pods, the app's root file system, volumes, per-app flags, exec
// failures, the fly flavor and a signed image. Helpers are in
// rkt_pod_real_test.go.

// TestRunExitCode: rkt run exits with the app's code, and arguments after
// "--" replace the image's.
func TestRunExitCode(t *testing.T) {
	e := newRealEnv(t)
	img := e.writeImage("args.aci", e.inspectACI("rkt.dev/args", "/inspect", "--print-msg=from-image"))
	if out := e.runOK(img); out != "from-image\n" {
		t.Errorf("the image's own arguments printed %q", out)
	}
	if out := e.runOK(img, "--", "--print-msg=from-args"); out != "from-args\n" {
		t.Errorf("arguments after -- printed %q, want only theirs", out)
	}
	for _, code := range []string{"3", "0", "101"} {
		uuid, r := e.runUUID(img, "--", "--exit-code="+code)
		if got := r.Exit; strconv.Itoa(got) != code {
			t.Errorf("app exit %s: rkt run exited %d\nstderr: %s", code, got, r.Stderr)
		}
		if st := e.podStatus(uuid); st["app-args"] != code {
			t.Errorf("status of the pod whose app exited %s: %v", code, st)
		}
	}
}

// TestRunMultiApp: two apps with their own arguments both run; when one
// fails, rkt run exits with its code and the other is stopped (SIGTERM).
func TestRunMultiApp(t *testing.T) {
	e := newRealEnv(t)
	r := e.run(e.img, "--name=a", "--exec=/inspect", "--", "--print-msg=A says hi", "---",
		e.img, "--name=b", "--exec=/inspect", "--", "--print-msg=B says hi")
	if r.Exit != 0 || !strings.Contains(r.Stdout, "A says hi\n") || !strings.Contains(r.Stdout, "B says hi\n") {
		t.Errorf("two apps: exit %d, stdout %q, want both messages\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}

	t0 := time.Now()
	uuid, r := e.runUUID(e.img, "--name=a", "--exec=/inspect", "--", "--sleep=0.5s", "--exit-code=3", "---",
		e.img, "--name=b", "--exec=/inspect", "--", "--sleep=60s")
	took := time.Since(t0)
	if r.Exit != 3 || !strings.Contains(r.Stdout, "inspect: got SIGTERM") {
		t.Errorf("app a exits 3: rkt run exited %d, want 3 with b stopped by SIGTERM\nstdout: %s\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}
	if took > 8*time.Second {
		t.Errorf("the pod took %s to stop after its app failed", took)
	}
	if st := e.podStatus(uuid); st["app-a"] != "3" || st["app-b"] != "143" {
		t.Errorf("status: %v, want app-a=3 app-b=143", st)
	}
}

// TestRunRootFS: the app's root is an overlay whose upper layer is in the
// pod directory (the store's tree is unchanged); --readonly-rootfs makes it
// read-only; /proc, a read-only /sys, a minimal /dev, /etc/hosts and
// /etc/resolv.conf are there.
func TestRunRootFS(t *testing.T) {
	e := newRealEnv(t)
	id := fetchOK(t, e.RktCtx, e.img)[0]
	uuid, r := e.runUUID(id, "--exec=/inspect", "--", "--write-file=/written", "--content=by the app")
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult([]string{"run"}, r))
	}
	upper := filepath.Join(e.podDir(uuid), "overlay", realApp, "upper", "written")
	if data, err := os.ReadFile(upper); err != nil || string(data) != "by the app" {
		t.Errorf("the app's file in its upper layer %s: %q, %v", upper, data, err)
	}
	lowers := strings.Fields(e.podFile(uuid, "appsinfo/"+realApp+"/lowerdirs"))
	if len(lowers) == 0 {
		t.Fatalf("no lower directories listed for the app")
	}
	for _, l := range lowers {
		if _, err := os.Lstat(filepath.Join(l, "written")); err == nil {
			t.Errorf("the app wrote into the store's tree %s", l)
		}
		if _, err := os.Stat(filepath.Join(l, "inspect")); err != nil {
			t.Errorf("lower directory %s does not hold the image's files: %v", l, err)
		}
	}
	e.MustRun("image", "verify", id)

	r = e.run(id, "--readonly-rootfs", "--exec=/inspect", "--", "--write-file=/written", "--content=x")
	if r.Exit != 1 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("write with --readonly-rootfs: %s", describeResult([]string{"run", "--readonly-rootfs"}, r))
	}

	uuid, r = e.runUUID(append([]string{id}, shExec("ls -lA /dev; echo @@; cat /proc/self/mountinfo; echo @@; cat /etc/hosts; echo @@; cat /etc/resolv.conf")...)...)
	parts := strings.Split(r.Stdout, "@@\n")
	if r.Exit != 0 || len(parts) != 4 {
		t.Fatalf("%s", describeResult([]string{"run", "sh"}, r))
	}
	checkMinimalDev(t, parts[0])
	checkSpecialMounts(t, parts[1])
	if !strings.Contains(parts[2], "rkt-"+uuid) || !strings.Contains(parts[2], "localhost") {
		t.Errorf("/etc/hosts does not name localhost and the pod's hostname rkt-%s:\n%s", uuid, parts[2])
	}
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil && parts[3] != string(host) {
		t.Errorf("/etc/resolv.conf of a --net=host pod is %q, want the host's %q", parts[3], host)
	}
}

// checkMinimalDev checks `ls -lA /dev` output: the character devices null
// zero full random urandom tty, ptmx, the pts and shm directories, and
// nothing but the usual fd/stdio symlinks besides.
func checkMinimalDev(t *testing.T, ls string) {
	t.Helper()
	want := map[string]byte{"null": 'c', "zero": 'c', "full": 'c', "random": 'c', "urandom": 'c', "tty": 'c', "pts": 'd', "shm": 'd'}
	links := map[string]bool{"ptmx": true, "fd": true, "stdin": true, "stdout": true, "stderr": true, "core": true}
	got := map[string]byte{}
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] == "total" {
			continue
		}
		name := f[len(f)-1]
		if f[0][0] == 'l' && len(f) > 3 && f[len(f)-2] == "->" {
			name = f[len(f)-3]
		}
		got[name] = f[0][0]
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("/dev/%s: type %q, want %q", name, got[name], typ)
		}
	}
	if typ, ok := got["ptmx"]; !ok || (typ != 'c' && typ != 'l') {
		t.Errorf("/dev/ptmx missing (type %q)", typ)
	}
	for name, typ := range got {
		if _, ok := want[name]; !ok && !(links[name] && (typ == 'l' || name == "ptmx")) {
			t.Errorf("unexpected /dev/%s (type %q) in a minimal /dev", name, typ)
		}
	}
	if t.Failed() {
		t.Logf("ls -lA /dev:\n%s", ls)
	}
}

// checkSpecialMounts checks the app's mountinfo: proc on /proc, sysfs on
// /sys mounted read-only, tmpfs on /dev, /dev/pts and /dev/shm.
func checkSpecialMounts(t *testing.T, mountinfo string) {
	t.Helper()
	type m struct{ opts, fstype string }
	mounts := map[string]m{}
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 1 {
			continue
		}
		mounts[f[4]] = m{opts: f[5], fstype: g[0]}
	}
	for point, fstype := range map[string]string{"/proc": "proc", "/sys": "sysfs", "/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"} {
		if got, ok := mounts[point]; !ok || got.fstype != fstype {
			t.Errorf("%s: mounted %v (type %q), want %s", point, ok, got.fstype, fstype)
		}
	}
	if !hasOpt(mounts["/sys"].opts, "ro") {
		t.Errorf("/sys is mounted %q, want read-only", mounts["/sys"].opts)
	}
	if t.Failed() {
		t.Logf("mountinfo:\n%s", mountinfo)
	}
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// TestRunVolumes: host volumes read-write and read-only, an empty volume,
// and image mount points satisfied by a --volume of the same name.
func TestRunVolumes(t *testing.T) {
	e := newRealEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.runOK("--volume=data,kind=host,source="+host, e.img, "--mount=volume=data,target=/data",
		"--exec=/inspect", "--", "--write-file=/data/out", "--content=from the app", "--read-file=/data/in")
	if !strings.Contains(out, "from the host") {
		t.Errorf("the app read %q from the host volume", out)
	}
	if data, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(data) != "from the app" {
		t.Errorf("file the app wrote in the host volume: %q, %v", data, err)
	}

	r := e.run("--volume=data,kind=host,source="+host+",readOnly=true", e.img, "--mount=volume=data,target=/data",
		"--exec=/inspect", "--", "--write-file=/data/nope", "--content=x")
	if r.Exit != 1 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("write to a readOnly host volume: %s", describeResult([]string{"run"}, r))
	}
	if _, err := os.Stat(filepath.Join(host, "nope")); err == nil {
		t.Errorf("the app wrote through a read-only volume")
	}

	uuid, r := e.runUUID("--volume=scratch,kind=empty,mode=0770", e.img, "--mount=volume=scratch,target=/scratch",
		"--exec=/inspect", "--", "--write-file=/scratch/f", "--content=scratch data", "--stat-file=/scratch")
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult([]string{"run", "empty volume"}, r))
	}
	wantValue(t, r.Stdout, "file type", "directory")
	wantValue(t, r.Stdout, "file mode", "0770")
	if data, err := os.ReadFile(filepath.Join(e.podDir(uuid), "sharedVolumes", "scratch", "f")); err != nil || string(data) != "scratch data" {
		t.Errorf("empty volume's file in the pod directory: %q, %v", data, err)
	}

	a := e.inspectACI("rkt.dev/mountpoints")
	a.Image.MountPoints = []testutils.MountPoint{{Name: "cache", Path: "/cache"}, {Name: "frozen", Path: "/frozen", ReadOnly: true}}
	img := e.writeImage("mountpoints.aci", a)
	cache, frozen := t.TempDir(), t.TempDir()
	vols := []string{"--volume=cache,kind=host,source=" + cache, "--volume=frozen,kind=host,source=" + frozen}
	e.runOK(append(vols, img, "--", "--write-file=/cache/c", "--content=cached")...)
	if data, err := os.ReadFile(filepath.Join(cache, "c")); err != nil || string(data) != "cached" {
		t.Errorf("file written to the image mount point /cache: %q, %v", data, err)
	}
	r = e.run(append(vols, img, "--", "--write-file=/frozen/x", "--content=x")...)
	if r.Exit != 1 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("write to a readOnly image mount point: %s", describeResult([]string{"run"}, r))
	}
}

// TestRunUserGroupWorkdir: --user/--group by number and by name (the
// image's /etc/passwd and /etc/group), --supplementary-gids, --working-dir.
func TestRunUserGroupWorkdir(t *testing.T) {
	e := newRealEnv(t)
	ids := []string{"--exec=/inspect", "--", "--print-user", "--print-groups", "--print-cwd"}
	out := e.runOK(append([]string{e.img, "--user=4242", "--group=4343"}, ids...)...)
	wantValue(t, out, "uid", "4242")
	wantValue(t, out, "euid", "4242")
	wantValue(t, out, "gid", "4343")
	out = e.runOK(append([]string{e.img, "--user=user", "--group=extra", "--supplementary-gids=65534,1001", "--working-dir=/tmp"}, ids...)...)
	wantValue(t, out, "uid", "1000")
	wantValue(t, out, "gid", "1001")
	wantValue(t, out, "groups", "1001 65534")
	wantValue(t, out, "cwd", "/tmp")
	out = e.runOK(append([]string{e.img}, ids...)...)
	wantValue(t, out, "uid", "0")
	wantValue(t, out, "cwd", "/")
	e.MustFail(254, "ghost", insecureImage, "run", hostNet, e.img, "--user=ghost")
}

// TestRunEnvironment checks rkt's precedence: inherited (--inherit-env) <
// image < --set-env-file < --set-env < per-app --environment.
func TestRunEnvironment(t *testing.T) {
	e := newRealEnv(t)
	a := e.inspectACI("rkt.dev/env")
	a.Image.Env = map[string]string{"V_IMG_INH": "image", "V_IMG_FILE": "image", "V_IMG": "image"}
	img := e.writeImage("env.aci", a)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nV_IMG_FILE=file\nV_FILE_SET=file\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"V_INH", "V_IMG_INH", "V_IMG_FILE", "V_FILE_SET", "V_SET_APP", "V_IMG", "AC_APP_NAME"}
	args := []string{"--set-env-file=" + envFile, "--set-env=V_FILE_SET=set-env", "--set-env=V_SET_APP=set-env",
		img, "--environment=V_SET_APP=app", "--"}
	for _, n := range names {
		args = append(args, "--print-env="+n)
	}
	hostEnv := []string{"V_INH=inherited", "V_IMG_INH=inherited"}
	want := map[string]string{
		"V_INH": "V_INH=inherited", "V_IMG_INH": "V_IMG_INH=image", "V_IMG_FILE": "V_IMG_FILE=file",
		"V_FILE_SET": "V_FILE_SET=set-env", "V_SET_APP": "V_SET_APP=app", "V_IMG": "V_IMG=image", "AC_APP_NAME": "AC_APP_NAME=env",
	}
	for _, inherit := range []bool{true, false} {
		full := append([]string{insecureImage, "run", hostNet}, args...)
		if inherit {
			full = append([]string{insecureImage, "run", hostNet, "--inherit-env"}, args...)
		}
		r := runWithEnv(t, e.RktCtx, hostEnv, full...)
		if r.Exit != 0 {
			t.Fatalf("%s", describeResult(full, r))
		}
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != len(names) {
			t.Fatalf("printed %q, want %d lines", r.Stdout, len(names))
		}
		for i, n := range names {
			w := want[n]
			if n == "V_INH" && !inherit {
				w = "V_INH is unset"
			}
			if lines[i] != w {
				t.Errorf("--inherit-env=%v: %q, want %q", inherit, lines[i], w)
			}
		}
	}
}

// TestRunExecFailures: a missing executable is caught before the pod
// exists (254); a script whose #! interpreter is missing fails with 127 and
// says why.
func TestRunExecFailures(t *testing.T) {
	e := newRealEnv(t)
	r := e.run(e.img, "--exec=/no/such/binary")
	if r.Exit != 254 || !strings.Contains(r.Stderr, "/no/such/binary") || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("missing executable: %s", describeResult([]string{"run", "--exec=/no/such/binary"}, r))
	}
	e.requireNoPods()

	a := e.inspectACI("rkt.dev/script", "/script.sh")
	a.Entries = append(a.Entries, testutils.File("script.sh", 0o755, "#!/no/such/interp\necho never\n"))
	img := e.writeImage("script.aci", a)
	uuid, r := e.runUUID(img)
	if r.Exit != 127 || !strings.Contains(r.Stderr, "/no/such/interp") || strings.Contains(r.Stdout, "never") {
		t.Errorf("script with a missing interpreter: %s", describeResult([]string{"run", img}, r))
	}
	if st := e.podStatus(uuid); st["app-script"] != "127" {
		t.Errorf("status: %v, want app-script=127", st)
	}
}

// TestRunFly: the fly stage1 runs the app in the host's network namespace
// and passes its exit code through.
func TestRunFly(t *testing.T) {
	e := newRealEnv(t)
	requireStage1Beside(t, e.Bin, "stage1-fly.aci")
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	r := e.run("--stage1-from-dir=stage1-fly.aci", e.img, "--exec=/inspect", "--", "--print-netns", "--exit-code=4")
	if r.Exit != 4 {
		t.Errorf("fly pod: %s", describeResult([]string{"run", "--stage1-from-dir=stage1-fly.aci"}, r))
	}
	wantValue(t, r.Stdout, "netns", hostNet)
	if m := mountsBelowDir(t, e.Dir); len(m) > 0 {
		t.Errorf("the exited fly pod left mounts: %v", m)
	}
}

// TestRunSignedImage signs an image with a gpg key made for the test,
// trusts the key for the image's prefix, and runs the image with
// signature checks on; an unsigned image is refused.
func TestRunSignedImage(t *testing.T) {
	e := newRealEnv(t)
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg is needed (apt-get install gnupg): %v", err)
	}
	home, err := os.MkdirTemp("", "rktg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		kill.Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.Bytes()
	}
	gpg("--quick-gen-key", "rkt run test <signed@rkt.dev>", "ed25519", "sign", "1d")
	key := filepath.Join(e.dir, "key.gpg")
	if err := os.WriteFile(key, gpg("--armor", "--export", "signed@rkt.dev"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := e.writeImage("signed.aci", e.inspectACI("rkt.dev/signed/app", "/inspect", "--print-msg=signed and verified"))
	gpg("--armor", "--detach-sign", "--output", img+".asc", img)
	e.MustRun("trust", "--prefix=rkt.dev/signed", "--skip-fingerprint-review", key)

	r := e.Run("run", hostNet, img)
	if r.Exit != 0 || r.Stdout != "signed and verified\n" || strings.Contains(r.Stderr, "warning") {
		t.Errorf("signed image: %s", describeResult([]string{"run", img}, r))
	}
	unsigned := e.writeImage("unsigned.aci", e.inspectACI("rkt.dev/signed/unsigned"))
	before := len(e.listPods())
	r = e.Run("run", hostNet, unsigned)
	if r.Exit != 254 || !strings.Contains(r.Stderr, unsigned) {
		t.Errorf("unsigned image without --insecure-options=image: %s", describeResult([]string{"run", unsigned}, r))
	}
	if after := len(e.listPods()); after != before {
		t.Errorf("the refused run left a pod: %d pods listed, %d before", after, before)
	}
}
