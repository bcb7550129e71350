package host

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage1/supervisor"
)

func TestCloneLine(t *testing.T) {
	for _, c := range []CloneLine{{}, {NewNet: true, NewIPC: true}, {Interactive: true, Debug: true}, {UUID: "0c2f8b1e-aaaa", LogSize: 65536, LogPrefix: true}} {
		got, ok := ParseCloneLine(c.String())
		if !ok || got != c {
			t.Errorf("%q: parsed %+v %v", c.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "clone net=1 bogus=1", "clone logsize=x", "start", "stage1: error"} {
		if c, ok := ParseCloneLine(bad); ok {
			t.Errorf("%q parsed: %+v", bad, c)
		}
	}
}

// TestLogPipesOnlyPipes: of what the pod's supervisor sends on the log
// socket, the host-side process takes only an app name with two pipes
// (or none); any other descriptor is closed, never read.
func TestLogPipesOnlyPipes(t *testing.T) {
	l, err := newPodLogs(CloneLine{}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.sock.Close()
	send := func(msg string, fds ...int) {
		t.Helper()
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if err := unix.Sendmsg(int(l.pod.Fd()), []byte(msg), oob, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	var p1, p2 [2]int
	if err := unix.Pipe2(p1[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.Pipe2(p2[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	send(supervisor.LogApp+"good", p1[0], p2[0])
	send(supervisor.LogApp+"file", int(file.Fd()), p2[0])
	send(supervisor.LogApp+"../up", p1[0], p2[0])
	send("bogus", p1[0], p2[0])
	send(supervisor.LogApp + "tty")
	l.pod.Close()
	apps := l.recvApps()
	var names []string
	for _, a := range apps {
		names = append(names, a.name)
		if a.stdout != nil {
			a.stdout.Close()
			a.stderr.Close()
		}
	}
	if strings.Join(names, ",") != "good,tty" {
		t.Errorf("took %q, want good and tty", names)
	}
}
