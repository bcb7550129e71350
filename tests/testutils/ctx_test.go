package testutils

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/mounts"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/testutil"
)

// fakeTB records failures instead of failing the real test. Fatalf and
// Skip end the calling goroutine, as in testing; run code under it with
// capture.
type fakeTB struct {
	testing.TB // the real test, for anything not overridden
	mu         sync.Mutex
	fatals     []string
	errors     []string
	cleanups   []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// capture runs fn in its own goroutine so that Fatalf can end it.
func capture(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// fakeRkt writes a shell script standing in for rkt: it prints its
// arguments one per line, writes "err:" plus $FAKE_STDERR to stderr, and
// exits with $FAKE_EXIT.
func fakeRkt(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rkt")
	script := "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\necho \"err:$FAKE_STDERR\" >&2\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RKT_BIN", path)
	return path
}

func newFakeCtx(t *testing.T) (*RktCtx, *fakeTB) {
	t.Helper()
	fake := &fakeTB{TB: t}
	var c *RktCtx
	capture(func() { c = NewRktCtx(fake) })
	if c == nil {
		t.Fatalf("NewRktCtx failed: %v", fake.fatals)
	}
	t.Cleanup(fake.runCleanups)
	return c, fake
}

func TestRktCtxDirsAndFlags(t *testing.T) {
	bin := fakeRkt(t)
	c, fake := newFakeCtx(t)
	if c.Bin != bin {
		t.Errorf("Bin %q, want $RKT_BIN %q", c.Bin, bin)
	}
	dirs := []string{c.Dir, c.LocalConfig, c.SystemConfig, c.UserConfig}
	seen := map[string]bool{}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("directory %q not created: %v", d, err)
		}
		seen[d] = true
	}
	if len(seen) != 4 {
		t.Errorf("directories not distinct: %v", dirs)
	}

	out := c.MustRun("run", "--net=host", "image.aci")
	want := fmt.Sprintf("--dir=%s\n--local-config=%s\n--system-config=%s\n--user-config=%s\nrun\n--net=host\nimage.aci\n",
		c.Dir, c.LocalConfig, c.SystemConfig, c.UserConfig)
	if out != want {
		t.Errorf("arguments passed:\n%s\nwant:\n%s", out, want)
	}

	// A second context gets other directories.
	c2, _ := newFakeCtx(t)
	if c2.Dir == c.Dir {
		t.Error("two contexts share a data directory")
	}

	fake.runCleanups()
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after cleanup: %v", d, err)
		}
	}
	if len(fake.errors) != 0 {
		t.Errorf("cleanup errors: %v", fake.errors)
	}
}

func TestRktCtxRunResults(t *testing.T) {
	fakeRkt(t)
	c, fake := newFakeCtx(t)

	t.Setenv("FAKE_EXIT", "254")
	t.Setenv("FAKE_STDERR", "image not found")
	r := c.Run("fetch", "x")
	if r.Exit != 254 || r.Stderr != "err:image not found\n" || !strings.HasSuffix(r.Stdout, "fetch\nx\n") {
		t.Errorf("Run: %+v", r)
	}

	// MustFail passes on the expected exit and message...
	capture(func() { c.MustFail(254, "not found", "fetch", "x") })
	if len(fake.fatals) != 0 {
		t.Errorf("MustFail failed on a matching result: %v", fake.fatals)
	}
	// ...and fails on another exit code or message.
	capture(func() { c.MustFail(1, "not found", "fetch", "x") })
	capture(func() { c.MustFail(254, "permission denied", "fetch", "x") })
	if len(fake.fatals) != 2 {
		t.Fatalf("MustFail accepted a mismatch: %v", fake.fatals)
	}
	if !strings.Contains(fake.fatals[0], "want exit 1") || !strings.Contains(fake.fatals[0], "err:image not found") {
		t.Errorf("MustFail message lacks the details: %s", fake.fatals[0])
	}

	// MustRun fails on a non-zero exit, showing stdout and stderr.
	fake.fatals = nil
	capture(func() { c.MustRun("fetch", "x") })
	if len(fake.fatals) != 1 || !strings.Contains(fake.fatals[0], "exit 254") || !strings.Contains(fake.fatals[0], "err:image not found") {
		t.Errorf("MustRun on failure: %v", fake.fatals)
	}
	t.Setenv("FAKE_EXIT", "0")
	fake.fatals = nil
	capture(func() { c.MustRun("version") })
	if len(fake.fatals) != 0 {
		t.Errorf("MustRun on success failed: %v", fake.fatals)
	}
}

func TestRktCtxMissingBinary(t *testing.T) {
	t.Setenv("RKT_BIN", filepath.Join(t.TempDir(), "no-such-rkt"))
	fake := &fakeTB{TB: t}
	capture(func() { NewRktCtx(fake) })
	if len(fake.fatals) != 1 || !strings.Contains(fake.fatals[0], "run `make` first") {
		t.Errorf("missing binary: %v", fake.fatals)
	}
	if len(fake.cleanups) != 0 {
		t.Error("a failed NewRktCtx registered cleanups (and maybe created directories)")
	}
}

func TestRktCtxCmdKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "rkt")
	// The fake rkt starts a child that keeps stdout open, then waits.
	script := "#!/bin/sh\nsleep 30 &\necho started\nwait\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RKT_BIN", bin)
	c, _ := newFakeCtx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cmd := c.Cmd(ctx, "run")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	out.Read(buf)
	err = cmd.Wait()
	if err == nil {
		t.Fatal("command survived its context")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v to stop: the sleeping child was not killed with rkt", d)
	}
}

func TestRequireRoot(t *testing.T) {
	ran := false
	t.Run("inner", func(t *testing.T) {
		RequireRoot(t)
		ran = true
	})
	if ran != (testutil.RootTests() && os.Geteuid() == 0) {
		t.Errorf("RequireRoot let the test run = %v as euid %d", ran, os.Geteuid())
	}
}

func TestMountsBelow(t *testing.T) {
	table := `22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /tmp/ctx rw - tmpfs tmpfs rw
31 30 0:41 / /tmp/ctx/data/a rw - tmpfs tmpfs rw
32 31 0:42 / /tmp/ctx/data/a/b\040c rw - tmpfs tmpfs rw
33 30 0:43 / /tmp/ctx/data/a rw - overlay overlay rw
34 22 0:44 / /tmp/ctxother rw - tmpfs tmpfs rw
35 22 0:45 / /tmp/ct rw - tmpfs tmpfs rw
`
	got, err := mounts.Below(strings.NewReader(table), "/tmp/ctx")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/tmp/ctx/data/a/b c", "/tmp/ctx/data/a", "/tmp/ctx/data/a", "/tmp/ctx"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("unmount order %q, want %q", got, want)
	}
}

func TestCleanupUnmounts(t *testing.T) {
	RequireRoot(t)
	fakeRkt(t)
	c, fake := newFakeCtx(t)
	outer := filepath.Join(c.Dir, "pods", "m")
	inner := filepath.Join(outer, "inner")
	if err := os.MkdirAll(outer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", outer, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs here: %v", err)
	}
	// Whatever happens, leave no mount behind.
	t.Cleanup(func() {
		unmountBelow(c.base)
		os.RemoveAll(c.base)
	})
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(outer, inner, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	// A busy mount: a process with its working directory inside.
	busy := exec.Command("sleep", "30")
	busy.Dir = inner
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		busy.Process.Kill()
		busy.Wait()
	}()

	fake.runCleanups()
	if len(fake.errors) != 0 {
		t.Errorf("cleanup errors: %v", fake.errors)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	left, err := mounts.Below(f, c.base)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("mounts left after cleanup: %v", left)
	}
	if _, err := os.Stat(c.base); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", c.base, err)
	}
}
