package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
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
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// operatorTerm is the test's terminal, standing for the operator's: rkt
// runs with its slave as stdin, stdout, stderr and controlling terminal
// (so that it gets SIGWINCH), and the test reads the master.
type operatorTerm struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
	eof           chan struct{}
}

func newOperatorTerm(t *testing.T, rows, cols uint16) *operatorTerm {
	m, s := openPTY(t)
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	o := &operatorTerm{master: m, slave: s, eof: make(chan struct{})}
	go func() {
		defer close(o.eof)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			o.mu.Lock()
			o.out.Write(buf[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return o
}

// start runs cmd on the terminal (its stdin, and stdout and stderr
// unless set), as the leader of a session whose controlling terminal it
// is.
func (o *operatorTerm) start(t *testing.T, c *exec.Cmd) {
	t.Helper()
	c.Stdin = o.slave
	if c.Stdout == nil {
		c.Stdout = o.slave
	}
	if c.Stderr == nil {
		c.Stderr = o.slave
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
}

func (o *operatorTerm) output() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.ReplaceAll(o.out.String(), "\r", "")
}

// settled is the output once the test's reader has taken all that rkt
// wrote: after rkt exited, its last bytes may still wait in the
// terminal's buffer.
func (o *operatorTerm) settled() string {
	return settledOutput(o.master, o.output)
}

// settledOutput waits (up to 5 s) until nothing is left to read on the
// terminal master m and output has not grown for 50 ms, and returns it.
func settledOutput(m *os.File, output func() string) string {
	last, stable := "", 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCINQ)
		cur := output()
		if err == nil && n == 0 && cur == last {
			if stable++; stable == 5 {
				break
			}
		} else {
			stable = 0
		}
		last = cur
	}
	return output()
}

// waitFor waits for s in the terminal's output.
func (o *operatorTerm) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(o.output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the terminal; got %q", s, o.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *operatorTerm) termios(t *testing.T) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(o.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// slaveDev is the terminal slave's (st_dev, st_rdev).
func (o *operatorTerm) slaveDev(t *testing.T) (uint64, uint64) {
	var st unix.Stat_t
	if err := unix.Fstat(int(o.slave.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev, st.Rdev
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// checkPodTerminal checks that the app's terminal (what --print-tty
// printed) is a pts of a devpts instance other than the operator's, and
// that no descriptor of the app is the operator's terminal.
func checkPodTerminal(t *testing.T, o *operatorTerm, out string) {
	t.Helper()
	dev, rdev := o.slaveDev(t)
	if !regexp.MustCompile(`(?m)^tty: /dev/pts/\d+$`).MatchString(out) {
		t.Errorf("the app's stdin is not a /dev/pts/N:\n%s", out)
	}
	if !strings.Contains(out, "\ntty dev: ") {
		t.Errorf("no tty dev printed:\n%s", out)
	} else if strings.Contains(out, fmt.Sprintf("\ntty dev: %d\n", dev)) {
		t.Errorf("the app's terminal is on the operator's devpts (st_dev %d), not the pod's:\n%s", dev, out)
	}
	if strings.Contains(out, fmt.Sprintf(": dev %d rdev %d\n", dev, rdev)) {
		t.Errorf("the app holds the operator's terminal (dev %d rdev %d):\n%s", dev, rdev, out)
	}
}

// TestInteractive: the app gets a terminal of the pod's own devpts as
// stdin, stdout and stderr, with the operator's window size, resized on
// SIGWINCH; typed input reaches it; the operator's terminal is raw while
// the app runs and restored after; the exit code is the app's.
func TestInteractive(t *testing.T) {
	p := newPod(t, stage1testApp("a", "/bin/sh", "-c",
		"tty; stty size; exec /inspect --check-tty --print-tty --print-winsize --wait-winch --read-stdin --exit-code=7"))
	o := newOperatorTerm(t, 33, 111)
	before := o.termios(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	o.waitFor(t, "waiting for SIGWINCH")
	during := o.termios(t)
	if during.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || during.Oflag&unix.OPOST != 0 {
		t.Errorf("the operator's terminal is not in raw mode while the app runs: lflag %#x oflag %#x", during.Lflag, during.Oflag)
	}
	if err := unix.IoctlSetWinsize(int(o.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 44, Col: 122}); err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, "winsize: 44 122")
	if _, err := o.master.WriteString("typed line\r"); err != nil {
		t.Fatal(err)
	}
	err := c.Wait()
	if code := exitCode(err); code != 7 {
		t.Errorf("exit code %d (%v), want the app's 7", code, err)
	}
	out := o.settled()
	t.Logf("terminal:\n%s", out)
	for _, s := range []string{"\n33 111\n", "stdin tty: true", "stdout tty: true", "stderr tty: true", "winsize: 33 111", "stdin: typed line"} {
		if !strings.Contains(out, s) {
			t.Errorf("no %q in %q", s, out)
		}
	}
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(out) {
		t.Errorf("tty printed no /dev/pts/N: %q", out)
	}
	checkPodTerminal(t, o, out)
	if after := o.termios(t); *after != *before {
		t.Errorf("terminal modes not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestInteractiveTIOCSTI: an app pushing a command into its terminal's
// input (TIOCSTI) pushes it into the pod's terminal, never into the
// operator's, where the operator's shell would run it after rkt exits.
func TestInteractiveTIOCSTI(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Skip("dev.tty.legacy_tiocsti=0: TIOCSTI needs CAP_SYS_ADMIN here")
	}
	const marker = "echo INJECTED-BY-POD\n"
	p := newPod(t, app("a", "--print-tty", "--tiocsti="+marker))
	o := newOperatorTerm(t, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	if err := c.Wait(); err != nil {
		t.Fatalf("pod: %v\n%s", err, o.output())
	}
	out := o.settled()
	if !strings.Contains(out, "tiocsti: ok") {
		t.Fatalf("the app's TIOCSTI on its own terminal failed:\n%s", out)
	}
	checkPodTerminal(t, o, out)
	// What the operator's shell would read next from its terminal.
	fd := int(o.slave.Fd()) // (Fd makes it blocking: once)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _ := unix.Read(fd, buf)
	if n > 0 && strings.Contains(string(buf[:n]), "INJECTED") {
		t.Errorf("the app injected %q into the operator's terminal input", buf[:n])
	}
}

// TestInteractiveSignalRestores: rkt stopped by SIGTERM stops the app and
// restores the operator's terminal modes.
func TestInteractiveSignalRestores(t *testing.T) {
	p := newPod(t, app("a", "--print-msg=running", "--sleep=30"))
	o := newOperatorTerm(t, 24, 80)
	before := o.termios(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	o.waitFor(t, "running")
	if during := o.termios(t); during.Lflag&unix.ICANON != 0 {
		t.Errorf("the operator's terminal is not in raw mode while the app runs")
	}
	c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	if code := exitCode(err); code != 143 {
		t.Errorf("exit code %d (%v), want 143 (the app's, killed by SIGTERM)\n%s", code, err, o.output())
	}
	if after := o.termios(t); *after != *before {
		t.Errorf("terminal modes not restored after SIGTERM:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestInteractivePipe: without a terminal on stdin, the app still gets
// a terminal of the pod's; piped input reaches it and its end is the
// terminal's end of file.
func TestInteractivePipe(t *testing.T) {
	p := newPod(t, stage1testApp("a", "/bin/sh", "-c",
		"/inspect --check-tty --read-stdin; cat; echo after-eof"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	c.Stdin = strings.NewReader("piped line\nrest without newline")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		t.Fatalf("pod: %v\n%s", err, out.String())
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, s := range []string{"stdin tty: true", "stdout tty: true", "stdin: piped line", "after-eof"} {
		if !strings.Contains(got, s) {
			t.Errorf("no %q in %q", s, got)
		}
	}
	// Echoed by the pod's terminal, then printed by cat, which got it
	// once the end of stdin became an end of file.
	if n := strings.Count(got, "rest without newline"); n != 2 {
		t.Errorf("%q %d times, want 2 (echo, cat) in %q", "rest without newline", n, got)
	}
}

// TestInteractiveExecFails: stage1's messages still reach the operator
// (the supervisor no longer has the operator's terminal: they are
// relayed), with the launcher's exit code, and the terminal is restored.
func TestInteractiveExecFails(t *testing.T) {
	p := newPod(t, stage1testApp("a", "/no/such/binary"))
	o := newOperatorTerm(t, 24, 80)
	before := o.termios(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	err := c.Wait()
	if code := exitCode(err); code != 127 {
		t.Errorf("exit code %d (%v), want 127", code, err)
	}
	time.Sleep(100 * time.Millisecond) // the last output through the terminal
	if out := o.settled(); !strings.Contains(out, "rkt: app a: exec /no/such/binary") {
		t.Errorf("no error message on the terminal: %q", out)
	}
	if after := o.termios(t); *after != *before {
		t.Errorf("terminal modes not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestInteractiveClosedStdout: a stdout closed under rkt (`rkt run
// --interactive ... | head -1`) ends neither the relay nor the app, and
// the terminal is restored.
func TestInteractiveClosedStdout(t *testing.T) {
	p := newPod(t, app("a", "--print-msg=one", "--sleep=0.3", "--print-hostname", "--exit-code=5"))
	o := newOperatorTerm(t, 24, 80)
	before := o.termios(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	c.Stdout = w
	o.start(t, c)
	err = c.Wait()
	if code := exitCode(err); code != 5 {
		t.Errorf("exit code %d (%v), want the app's 5\n%s", code, err, o.output())
	}
	if after := o.termios(t); *after != *before {
		t.Errorf("terminal modes not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestInteractiveUser: a non-root app owns its terminal and uses it.
func TestInteractiveUser(t *testing.T) {
	a := stage1testApp("a", "/bin/sh", "-c", `stat -c "owner %u" "$(tty)"; exec /inspect --print-user --check-tty --read-stdin`)
	a.User, a.Group = "1000", "1000"
	p := newPod(t, a)
	o := newOperatorTerm(t, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	o.waitFor(t, "stderr tty: ")
	if _, err := o.master.WriteString("from the operator\r"); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("pod: %v\n%s", err, o.output())
	}
	out := o.settled()
	for _, s := range []string{"owner 1000\n", "uid: 1000", "stdin tty: true", "stdin: from the operator"} {
		if !strings.Contains(out, s) {
			t.Errorf("no %q in %q", s, out)
		}
	}
}

// TestInteractiveCtrlC: ^C typed on the operator's (raw) terminal is the
// pod terminal's interrupt character: the app gets SIGINT.
func TestInteractiveCtrlC(t *testing.T) {
	p := newPod(t, app("a", "--print-msg=running", "--sleep=30"))
	o := newOperatorTerm(t, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	o.waitFor(t, "running")
	if _, err := o.master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	err := c.Wait()
	if code := exitCode(err); code != 130 {
		t.Errorf("exit code %d (%v), want 130 (the app's, on SIGINT)\n%s", code, err, o.output())
	}
	o.waitFor(t, "inspect: got SIGINT")
}

// TestInteractiveEventHandlers: the terminal of an interactive pod is the
// app's: its event handlers run without it (stdin /dev/null, output on
// rkt's stderr), before and after the app, which gets the terminal.
func TestInteractiveEventHandlers(t *testing.T) {
	a := stage1testApp("a", "/inspect", "--check-tty", "--read-stdin")
	a.PreStart = []string{"/bin/sh", "-c", `test -t 0 && echo "pre-start on a tty" || echo "pre-start without a tty"`}
	a.PostStop = []string{"/bin/sh", "-c", `test -t 0 && echo "post-stop on a tty" || echo "post-stop without a tty"`}
	p := newPod(t, a)
	o := newOperatorTerm(t, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	o.start(t, c)
	o.waitFor(t, "stderr tty: ")
	if _, err := o.master.WriteString("from the operator\r"); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("pod: %v\n%s", err, o.output())
	}
	out := o.settled()
	for _, s := range []string{"pre-start without a tty", "stdin tty: true", "stdin: from the operator", "post-stop without a tty"} {
		if !strings.Contains(out, s) {
			t.Errorf("no %q in %q", s, out)
		}
	}
	if i, j := strings.Index(out, "pre-start"), strings.Index(out, "stdin tty: true"); i > j {
		t.Errorf("pre-start's output after the app's: %q", out)
	}
}
