package fds

import (
	"testing"

	"golang.org/x/sys/unix"
)

// openInheritable opens n descriptors without close-on-exec.
func openInheritable(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for i := 0; i < n; i++ {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		out = append(out, fd)
	}
	return out
}

func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("fd %d: %v", fd, err)
	}
	return fl&unix.FD_CLOEXEC != 0
}

func TestCloseOnExecFrom(t *testing.T) {
	fds := openInheritable(t, 4)
	keep := fds[1]
	if err := CloseOnExecFrom(3, keep); err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if got := cloexec(t, fd); got != (fd != keep) {
			t.Errorf("fd %d: close-on-exec %v, want %v (kept: %d)", fd, got, fd != keep, keep)
		}
	}
	for fd := 0; fd < 3; fd++ {
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC != 0 {
			t.Errorf("fd %d (stdio) was made close-on-exec", fd)
		}
	}
}

func TestCloseOnExecByProc(t *testing.T) {
	fds := openInheritable(t, 3)
	if err := cloexecProc(fds[0], fds[1]); err != nil {
		t.Fatal(err)
	}
	for i, fd := range fds {
		if got, want := cloexec(t, fd), i < 2; got != want {
			t.Errorf("fd %d: close-on-exec %v, want %v", fd, got, want)
		}
	}
}

func TestListenEnv(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want int
		bad  bool
	}{
		{nil, 0, false},
		{[]string{"LISTEN_FDS=2", "LISTEN_PID=42"}, 2, false},
		{[]string{"LISTEN_FDS=2", "LISTEN_PID=43"}, 0, false}, // for another process
		{[]string{"LISTEN_FDS=2"}, 0, false},
		{[]string{"LISTEN_FDS=x", "LISTEN_PID=42"}, 0, true},
		{[]string{"LISTEN_FDS=-1", "LISTEN_PID=42"}, 0, true},
		{[]string{"LISTEN_FDS=100000", "LISTEN_PID=42"}, 0, true},
		{[]string{"LISTEN_FDS=1", "LISTEN_PID=me"}, 0, true},
	} {
		got, err := ListenEnv(c.env, 42)
		if got != c.want || (err != nil) != c.bad {
			t.Errorf("ListenEnv(%q) = %d, %v; want %d, error %v", c.env, got, err, c.want, c.bad)
		}
	}
	if p := Passed(3); len(p) != 3 || p[0] != 3 || p[2] != 5 {
		t.Errorf("Passed(3) = %v, want [3 4 5]", p)
	}
}
