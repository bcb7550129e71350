package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRunInteractive: `rkt run --interactive` under a terminal of the
// test's (the operator's) gives the app a terminal of the pod's own
// devpts with the operator's window size, changed on SIGWINCH (the test's
// terminal is rkt's controlling terminal); the operator's terminal is raw
// while the app runs and restored after; an app's TIOCSTI lands in the
// pod's terminal, not in the operator's input; no descriptor of the
// operator's terminal is in the app.
func TestRunInteractive(t *testing.T) {
	e := newRealEnv(t)
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 31, Col: 97}); err != nil {
		t.Fatal(err)
	}
	sfd := int(s.Fd())
	before, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.ReplaceAll(out.String(), "\r", "")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The app reads back what it pushed into its terminal.
	script := "tty; stty size; exec /inspect --print-tty --tiocsti='echo INJECTED-BY-POD\n' --wait-winch --read-stdin --exit-code=9"
	c := e.Cmd(ctx, insecureImage, "run", hostNet, "--interactive", e.img, "--exec=/bin/sh", "--", "-c", script)
	c.Stdin, c.Stdout, c.Stderr = s, s, s
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(output(), "waiting for SIGWINCH") {
		if time.Now().After(deadline) {
			t.Fatalf("the app did not start: %q", output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	during, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if during.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("the operator's terminal is not raw while the app runs (lflag %#x)\n%s", during.Lflag, output())
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 41, Col: 107}); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	if code := c.ProcessState.ExitCode(); code != 9 {
		t.Errorf("rkt run exited %d (%v), want the app's 9\n%s", code, err, output())
	}
	// rkt's last bytes may still wait in the terminal's buffer.
	for last, stable, deadline := "", 0, time.Now().Add(5*time.Second); stable < 5 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCINQ)
		if cur := output(); err == nil && n == 0 && cur == last {
			stable++
		} else {
			stable, last = 0, cur
		}
	}
	got := output()
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+\n31 97\n`).MatchString(got) {
		t.Errorf("tty and stty size did not print the pod's terminal and 31 97:\n%s", got)
	}
	if !strings.Contains(got, "\ntty dev: ") || strings.Contains(got, fmt.Sprintf("\ntty dev: %d\n", st.Dev)) {
		t.Errorf("the app's terminal is not of a devpts other than the operator's (st_dev %d):\n%s", st.Dev, got)
	}
	if strings.Contains(got, fmt.Sprintf(": dev %d rdev %d\n", st.Dev, st.Rdev)) {
		t.Errorf("the app holds the operator's terminal:\n%s", got)
	}
	for _, w := range []string{"tiocsti: ok", "winsize: 41 107", "stdin: echo INJECTED-BY-POD"} {
		if !strings.Contains(got, w) {
			t.Errorf("no %q in\n%s", w, got)
		}
	}
	after, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("terminal modes not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	// What the operator's shell would read next.
	unix.SetNonblock(sfd, true)
	buf := make([]byte, 256)
	if n, _ := unix.Read(sfd, buf); n > 0 && strings.Contains(string(buf[:n]), "INJECTED") {
		t.Errorf("the app injected %q into the operator's terminal input", buf[:n])
	}
}
