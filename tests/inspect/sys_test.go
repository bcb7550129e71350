package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSysFlags(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runArgs(t, "", "--open-file="+f+",r", "--open-file="+f+"-missing,rw", "--print-fds")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"open " + f + ": ok\n", "open " + f + "-missing: ENOENT\n", "fd: 0 ", "fd: 2 "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "/proc/") && strings.Contains(out, "/fd\n") {
		t.Errorf("the listing shows its own directory descriptor:\n%s", out)
	}
	for _, bad := range [][]string{{"--mknod=/x,q,1,3"}, {"--mknod=/x,c,1"}, {"--mknod=/x,c,a,b"}, {"--open-file=/x"}, {"--open-file=/x,z"}} {
		if _, _, err := runArgs(t, "", bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
