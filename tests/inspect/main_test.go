package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runArgs(t *testing.T, stdin string, args ...string) (string, int, error) {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		return "", 0, err
	}
	var out bytes.Buffer
	code, err := run(context.Background(), o, strings.NewReader(stdin), &out)
	return out.String(), code, err
}

func TestRunOrderAndOutput(t *testing.T) {
	t.Setenv("INSPECT_A", "1")
	path := filepath.Join(t.TempDir(), "f")
	out, code, err := runArgs(t, "typed line\nmore\n",
		"--exit-code=7", "--read-stdin", "--read-file="+path, "--write-file="+path,
		"--content=data", "--print-env=INSPECT_A", "--print-msg=first")
	if err != nil {
		t.Fatal(err)
	}
	want := "first\nINSPECT_A=1\nwrote: " + path + "\n<<<data>>>\nstdin: typed line\n"
	if out != want || code != 7 {
		t.Errorf("exit %d, output\n%q\nwant\n%q", code, out, want)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--content=x"},
		{"--sleep=soon"},
		{"extra"},
		{"--no-such-flag"},
	} {
		if _, _, err := runArgs(t, "", args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestSleepFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"2": 2 * time.Second, "0.5": 500 * time.Millisecond, "150ms": 150 * time.Millisecond} {
		var s sleepFlag
		if err := s.Set(in); err != nil || time.Duration(s) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Duration(s), err, want)
		}
	}
}

func TestCgroupPaths(t *testing.T) {
	if got := unescapeMountinfo(`/sys/fs/cgroup/a\040b\\x`); got != `/sys/fs/cgroup/a b\\x` {
		t.Errorf("unescape: %q", got)
	}
	// Mount root is the pod's cgroup (cgroup namespace or bind mount).
	m := cgMount{root: "/machine/pod1", point: "/sys/fs/cgroup/memory"}
	got := candidateDirs(m, "/machine/pod1/app")
	if got[0] != "/sys/fs/cgroup/memory/app" {
		t.Errorf("candidates %v", got)
	}
	// A root that is only a string prefix of the path must not match.
	m = cgMount{root: "/machine/pod", point: "/sys/fs/cgroup/memory"}
	got = candidateDirs(m, "/machine/pod1/app")
	if got[0] != "/sys/fs/cgroup/memory/machine/pod1/app" || got[1] != "/sys/fs/cgroup/memory" {
		t.Errorf("candidates %v", got)
	}
	m = cgMount{root: "/", point: "/sys/fs/cgroup"}
	if got = candidateDirs(m, "/user.slice"); got[0] != "/sys/fs/cgroup/user.slice" {
		t.Errorf("candidates %v", got)
	}
}
