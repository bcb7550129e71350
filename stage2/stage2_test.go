package stage2

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const passwd = `root:x:0:0:root:/root:/bin/sh
# a comment
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
broken:x:notanumber:1:::
`

const group = `root:x:0:
nogroup:x:65534:
user:x:1000:
extra:x:1001:user
`

func resolve(user, grp string) (Identity, error) {
	owner := func(p string) (int, int, error) {
		if p == "/owned" {
			return 42, 43, nil
		}
		return 0, 0, os.ErrNotExist
	}
	return resolveIdentity(user, grp, strings.NewReader(passwd), strings.NewReader(group), owner)
}

func TestResolveIdentity(t *testing.T) {
	for _, c := range []struct {
		user, group string
		want        Identity
	}{
		{"", "", Identity{UID: 0, GID: 0, Home: "/root", Name: "root"}},
		{"0", "0", Identity{UID: 0, GID: 0, Home: "/root", Name: "root"}},
		{"user", "", Identity{UID: 1000, GID: 1000, Home: "/home/user", Name: "user"}},
		{"user", "extra", Identity{UID: 1000, GID: 1001, Home: "/home/user", Name: "user"}},
		{"nobody", "nogroup", Identity{UID: 65534, GID: 65534, Home: "/nonexistent", Name: "nobody"}},
		{"1000", "1001", Identity{UID: 1000, GID: 1001, Home: "/home/user", Name: "user"}},
		{"4242", "", Identity{UID: 4242, GID: 4242}},
		{"/owned", "/owned", Identity{UID: 42, GID: 43}},
	} {
		got, err := resolve(c.user, c.group)
		if err != nil {
			t.Errorf("%q:%q: %v", c.user, c.group, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q:%q = %+v, want %+v", c.user, c.group, got, c.want)
		}
	}
}

func TestResolveIdentityErrors(t *testing.T) {
	_, err := resolve("ghost", "")
	if !errors.Is(err, ErrUserNotFound) || err.Error() != "user ghost not found in image's /etc/passwd" {
		t.Errorf("unknown user: %v", err)
	}
	_, err = resolve("user", "ghosts")
	if !errors.Is(err, ErrUserNotFound) || !strings.Contains(err.Error(), "group ghosts not found in image's /etc/group") {
		t.Errorf("unknown group: %v", err)
	}
	_, err = resolveIdentity("user", "", nil, nil, statOwner)
	if !errors.Is(err, ErrUserNotFound) || !strings.Contains(err.Error(), "no /etc/passwd") {
		t.Errorf("no passwd file: %v", err)
	}
	if _, err := resolve("/missing", ""); err == nil {
		t.Error("user from a missing file: no error")
	}
}

func TestCompleteEnv(t *testing.T) {
	env := completeEnv([]string{"PATH=/bin", "HOME=/h"}, Identity{UID: 1000, Name: "user", Home: "/home/user"})
	want := "PATH=/bin HOME=/h USER=user LOGNAME=user"
	if got := strings.Join(env, " "); got != want {
		t.Errorf("env = %s, want %s", got, want)
	}
	env = completeEnv(nil, Identity{UID: 0})
	if got := strings.Join(env, " "); got != "HOME=/root" {
		t.Errorf("root without passwd entry: %s", got)
	}
}

func TestCapNumbers(t *testing.T) {
	got, err := CapNumbers([]string{"CAP_SYS_ADMIN", "net_admin", "CAP_CHOWN", "CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 12 || got[2] != 21 {
		t.Errorf("CapNumbers = %v", got)
	}
	if _, err := CapNumbers([]string{"CAP_FLY"}); err == nil {
		t.Error("unknown capability accepted")
	}
	def, err := CapNumbers(DefaultCapabilities)
	if err != nil || len(def) != 14 {
		t.Errorf("default set: %v, %v", def, err)
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var se *SetupError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a SetupError", err)
	}
	return se.Code
}

func TestCheckExecutable(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.sh", "#!/bin/sh\necho\n", 0o755)
	if err := checkExecutable(ok); err != nil {
		t.Errorf("a runnable script: %v", err)
	}
	err := checkExecutable(filepath.Join(dir, "missing"))
	if exitCode(t, err) != ExitNotFound || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing binary: %v", err)
	}
	noInterp := write("bad.sh", "#!/no/such/interpreter -x\n", 0o755)
	err = checkExecutable(noInterp)
	if exitCode(t, err) != ExitNotFound || !strings.Contains(err.Error(), "interpreter (from its #! line) /no/such/interpreter is missing") {
		t.Errorf("missing interpreter: %v", err)
	}
	noExec := write("plain", "data", 0o644)
	err = checkExecutable(noExec)
	if exitCode(t, err) != ExitNotExecutable || !strings.Contains(err.Error(), "not executable (mode 0644)") {
		t.Errorf("not executable: %v", err)
	}
	if exitCode(t, checkExecutable(dir)) != ExitNotExecutable {
		t.Error("a directory passed the check")
	}
}

func TestInterpreterOfDynamicELF(t *testing.T) {
	// /bin/ls is dynamically linked on Debian.
	if _, err := os.Stat("/bin/ls"); err != nil {
		t.Skip("no /bin/ls")
	}
	interp, kind := interpreter("/bin/ls")
	if !strings.HasPrefix(interp, "/lib") || !strings.Contains(kind, "dynamic loader") {
		t.Errorf("interpreter of /bin/ls = %q (%s), want the dynamic loader", interp, kind)
	}
	// A script is not an ELF file.
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := elfInterp(f); got != "" && !strings.HasPrefix(got, "/lib") {
		t.Errorf("elfInterp of the test binary = %q", got)
	}
}

func TestLookPath(t *testing.T) {
	if p, err := lookPath("/x/y", nil); err != nil || p != "/x/y" {
		t.Errorf("absolute: %s, %v", p, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := lookPath("tool", []string{"PATH=/nonexistent:" + dir}); err != nil || p != filepath.Join(dir, "tool") {
		t.Errorf("in PATH: %s, %v", p, err)
	}
	if _, err := lookPath("tool", []string{"PATH=/nonexistent"}); exitCode(t, err) != ExitNotFound {
		t.Errorf("not in PATH: %v", err)
	}
}

func TestOverlayEscape(t *testing.T) {
	if got := overlayEscape(`/a:b,c\d`); got != `/a\:b\,c\\d` {
		t.Errorf("overlayEscape = %s", got)
	}
}

// TestSystemdEnv: the app's socket activation and watchdog variables name
// the app's pid (the launcher's, which execs it), replacing any the app's
// environment had; without them the environment is left as it is.
func TestSystemdEnv(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	env := systemdEnv([]string{"A=1", "LISTEN_PID=1", "LISTEN_FDS=9"}, &App{ListenFds: 2, ListenFdNames: "web:admin", WatchdogUsec: "5000000"})
	want := "A=1 LISTEN_FDS=2 LISTEN_PID=" + pid + " LISTEN_FDNAMES=web:admin WATCHDOG_USEC=5000000 WATCHDOG_PID=" + pid
	if got := strings.Join(env, " "); got != want {
		t.Errorf("env = %s, want %s", got, want)
	}
	if got := strings.Join(systemdEnv([]string{"LISTEN_FDS=9"}, &App{}), " "); got != "LISTEN_FDS=9" {
		t.Errorf("env without socket activation = %s", got)
	}
}
