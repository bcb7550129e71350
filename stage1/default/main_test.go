package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rkt/rkt/stage1/stage1test"

	"github.com/rkt/rkt/pkg/testutil"
)

// Shared by every test: the built stage1 binary and an app root.
var (
	binDir string
	rootfs string
)

func TestMain(m *testing.M) {
	if !testutil.RootTests() {
		// The functional tests skip themselves; the rest still runs.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "rkt-stage1-default-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hostNet := stage1test.SnapshotHostNet()
	code := func() int {
		if binDir, err = stage1test.Build("./stage1/default", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// binDir stands for the stage1 image's rootfs: the plugins go
		// where the image has them.
		if err := stage1test.BuildPlugins(binDir); err != nil {
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
	hostNet.Restore()
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireRoot(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t) // namespaces, mounts, cgroups
}

// app returns an inspect app with args.
func app(name string, args ...string) stage1test.App {
	return stage1test.App{Name: name, Exec: append([]string{"/inspect"}, args...), Rootfs: rootfs}
}

func newPod(t *testing.T, apps ...stage1test.App) *stage1test.Pod {
	t.Helper()
	requireRoot(t)
	return stage1test.NewPod(t, binDir, stage1test.Spec{Apps: apps})
}

func TestExitCodeSingleApp(t *testing.T) {
	p := newPod(t, app("a", "--print-msg=hello", "--exit-code=42"))
	r := p.RunPod("--net=host")
	if r.Code != 42 {
		t.Fatalf("exit code %d, want 42\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if r.Stdout != "hello\n" {
		t.Errorf("stdout = %q", r.Stdout)
	}
	if c, ok := p.Status("a"); !ok || c != 42 {
		t.Errorf("status file = %d, %v", c, ok)
	}
}

// stage1testApp returns an app running exec in the shared root.
func stage1testApp(name string, exec ...string) stage1test.App {
	return stage1test.App{Name: name, Exec: exec, Rootfs: rootfs}
}
