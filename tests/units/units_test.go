package units

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rkt/rkt/pkg/testutil"
)

// prefix is where the test installs, below its DESTDIR.
const prefix = "/usr/local"

// installed is a `make install DESTDIR=...` tree with the host's systemd
// units beside it (systemd-analyze verify --root= needs the targets the
// units name, sysinit.target and the others, inside the root).
type installed struct {
	root    string
	unitDir string // the root's $(PREFIX)/lib/systemd/system
}

func install(t *testing.T) *installed {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is missing: install the systemd package (scripts/deps does)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is missing (scripts/deps installs it)")
	}
	_, self, _, _ := runtime.Caller(0)
	top := filepath.Join(filepath.Dir(self), "..", "..")
	root := t.TempDir()
	cmd := exec.Command("make", "-C", top, "install", "DESTDIR="+root, "PREFIX="+prefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install DESTDIR=%s: %v\n%s", root, err, out)
	}
	hostUnits := "/usr/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(hostUnits, "sysinit.target")); err != nil {
		hostUnits = "/lib/systemd/system"
	}
	dst := filepath.Join(root, "usr/lib/systemd")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", hostUnits, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the host's units: %v\n%s", err, out)
	}
	return &installed{root: root, unitDir: filepath.Join(root, prefix, "lib/systemd/system")}
}

// verify runs systemd-analyze verify on the unit file at path (inside
// in.root) and fails on any complaint: verify exits 0 on unknown keys and
// bad values, which it only prints. The man pages of Documentation= are
// looked up in the installed ones.
func (in *installed) verify(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command("systemd-analyze", "verify", "--root="+in.root, path)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(in.root, prefix, "share/man"), "SYSTEMD_LOG_LEVEL=notice")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	if err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(path), err, stderr.String())
	}
}

// TestInstalledUnits: every installed unit passes systemd-analyze verify;
// the pod units delegate the cgroup, stop with KillMode=mixed, and do not
// fetch on every start.
func TestInstalledUnits(t *testing.T) {
	in := install(t)
	want := []string{"rkt-gc.service", "rkt-gc.timer", "rkt-pod@.service", "rkt-metadata.service", "rkt-metadata.socket"}
	for _, u := range want {
		if _, err := os.Stat(filepath.Join(in.unitDir, u)); err != nil {
			t.Errorf("make install did not install %s: %v", u, err)
		}
	}
	example := filepath.Join(in.root, prefix, "share/doc/rkt/example-pod.service")
	// verify takes a unit file's name as its unit name, so the example is
	// checked from the unit directory, as an operator would install it.
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatalf("make install did not install the example unit: %v", err)
	}
	if err := os.WriteFile(filepath.Join(in.unitDir, "example-pod.service"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(in.unitDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(in.unitDir, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			in.verify(t, path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			if strings.HasSuffix(e.Name(), ".service") && !strings.Contains(text, prefix+"/bin/rkt ") {
				t.Errorf("%s does not run %s/bin/rkt", e.Name(), prefix)
			}
			if !strings.HasSuffix(e.Name(), ".service") || !strings.Contains(text, " run ") {
				return
			}
			for _, line := range []string{"Delegate=yes", "KillMode=mixed", "SuccessExitStatus=143", "Type=notify"} {
				if !strings.Contains(text, "\n"+line+"\n") {
					t.Errorf("%s lacks %s", e.Name(), line)
				}
			}
			if strings.Contains(text, "ExecStartPre=") && strings.Contains(text, " fetch ") {
				t.Errorf("%s fetches the image on every start (ExecStartPre=rkt fetch)", e.Name())
			}
			if !strings.Contains(text, "--pull-policy=new") {
				t.Errorf("%s does not say --pull-policy=new", e.Name())
			}
		})
	}
}

// TestInstalledTmpfiles: systemd-sysusers creates the rkt group of the
// installed sysusers.d/rkt.conf, and systemd-tmpfiles accepts the
// installed rkt.conf and creates its directories, in a root of the
// test's.
func TestInstalledTmpfiles(t *testing.T) {
	testutil.RequireRoot(t)
	in := install(t)
	for _, tool := range []string{"systemd-tmpfiles", "systemd-sysusers"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: install the systemd package (scripts/deps does)", tool)
		}
	}
	// The group first, as a package's install does: tmpfiles names it.
	users := filepath.Join(in.root, prefix, "lib/sysusers.d/rkt.conf")
	if err := os.MkdirAll(filepath.Join(in.root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-sysusers", "--root="+in.root, users).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers %s: %v\n%s", users, err, out)
	}
	if group, err := os.ReadFile(filepath.Join(in.root, "etc/group")); err != nil || !strings.Contains(string(group), "\nrkt:") && !strings.HasPrefix(string(group), "rkt:") {
		t.Fatalf("systemd-sysusers did not create the rkt group: %v\n%s", err, group)
	}
	conf := filepath.Join(in.root, prefix, "lib/tmpfiles.d/rkt.conf")
	out, err := exec.Command("systemd-tmpfiles", "--root="+in.root, "--create", conf).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-tmpfiles --create %s: %v\n%s", conf, err, out)
	}
	for _, d := range []string{"var/lib/rkt/pods", "var/lib/rkt/cas", "etc/rkt/trustedkeys", "etc/rkt/units"} {
		if fi, err := os.Stat(filepath.Join(in.root, d)); err != nil || !fi.IsDir() {
			t.Errorf("systemd-tmpfiles did not create /%s: %v", d, err)
		}
	}
	// The data directory is the rkt group's to read.
	group, _ := os.ReadFile(filepath.Join(in.root, "etc/group"))
	gid := ""
	for _, line := range strings.Split(string(group), "\n") {
		if f := strings.Split(line, ":"); len(f) > 2 && f[0] == "rkt" {
			gid = f[2]
		}
	}
	for _, d := range []string{"var/lib/rkt", "var/lib/rkt/pods/run", "var/lib/rkt/cas"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(in.root, d), &st); err != nil || strconv.Itoa(int(st.Gid)) != gid || st.Mode&0o050 != 0o050 {
			t.Errorf("/%s: gid %d mode %o (%v); want the rkt group (%s) with g+rx", d, st.Gid, st.Mode&0o7777, err, gid)
		}
	}
}
