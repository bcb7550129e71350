package host

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage1/supervisor"
)

// terminal is an interactive pod's terminal relay, in the host-side
// process (out of the pod's reach: no pod process can signal or ptrace
// it). The app gets a pseudo-terminal of its own devpts instance, whose
// master its launcher sends here over a unix socket; this process copies
// the operator's stdin to the master and the master to its stdout, with
// the operator's terminal (stdin, when it is one) in raw mode, the pod's
// terminal given the operator's modes and window size, and window-size
// changes (SIGWINCH) passed on. The operator's terminal itself reaches no
// pod process: the supervisor and launchers get /dev/null as stdin and a
// pipe as stdout and stderr, whose stage1 messages are copied to stderr.
//
// Without a terminal on stdin there is no raw mode; the end of stdin is
// sent as the pod terminal's end-of-file character (VEOF), as typing ^D
// would, when the pod's terminal is in canonical mode.
type terminal struct {
	sock    *os.File // ours: the master comes on it
	podSock *os.File // the supervisor's end, closed once it runs
	errR    *os.File // the pod's stage1 messages (the supervisor's stderr)
	errW    *os.File
	winch   chan os.Signal
	served  chan struct{} // serve is done: the master is closed or never came
	errDone chan struct{}

	mu     sync.Mutex
	master *os.File
	inTTY  bool
	saved  *unix.Termios // the operator's modes while they are raw
	ended  bool          // restore was called: do not make them raw
}

// newTerminal makes the socket and pipe that an interactive pod's
// supervisor gets.
func newTerminal() (*terminal, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, err
	}
	return &terminal{
		sock: os.NewFile(uintptr(fds[0]), "terminal"), podSock: os.NewFile(uintptr(fds[1]), "terminal"),
		errR: errR, errW: errW, winch: make(chan os.Signal, 1),
		served: make(chan struct{}), errDone: make(chan struct{}),
	}, nil
}

// started closes the supervisor's ends and starts relaying.
func (t *terminal) started() {
	t.podSock.Close()
	t.errW.Close()
	go t.copyErr()
	go t.serve()
}

// serve takes the master from the launcher, sets the terminals up and
// copies the master to stdout until the pod's side is closed.
func (t *terminal) serve() {
	defer close(t.served)
	m, err := t.receive()
	if err != nil {
		t.sock.Close() // the launcher fails and says so
		if !errors.Is(err, errNoTerminal) {
			warn("stage1: the interactive app's terminal: " + err.Error())
		}
		return
	}
	if !t.setup(m) {
		m.Close()
		t.sock.Close()
		return
	}
	t.sock.WriteString(supervisor.TerminalReady)
	t.sock.Close()
	go t.copyIn(m)
	buf := make([]byte, 32<<10)
	for {
		n, err := m.Read(buf)
		if n > 0 {
			os.Stdout.Write(buf[:n])
		}
		if err != nil {
			break // EIO: the pod's side is closed
		}
	}
}

// errNoTerminal: the pod ended before its launcher sent a terminal.
var errNoTerminal = errors.New("no terminal from the pod")

// receive reads the launcher's one message: the master, checked to be
// one.
func (t *terminal) receive() (*os.File, error) {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(int(t.sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	for errors.Is(err, unix.EINTR) {
		n, oobn, _, _, err = unix.Recvmsg(int(t.sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil {
		return nil, err
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, r...)
			}
		}
	}
	if n == 0 && len(fds) == 0 {
		return nil, errNoTerminal
	}
	for _, fd := range fds[min(1, len(fds)):] {
		unix.Close(fd)
	}
	if string(buf[:n]) != supervisor.TerminalMaster || len(fds) == 0 {
		if len(fds) > 0 {
			unix.Close(fds[0])
		}
		return nil, errors.New("unexpected message from the launcher")
	}
	if _, err := unix.IoctlGetInt(fds[0], unix.TIOCGPTN); err != nil {
		unix.Close(fds[0])
		return nil, errors.New("the launcher sent no pseudo-terminal master")
	}
	// Non-blocking, so that Close interrupts a Read.
	unix.SetNonblock(fds[0], true)
	return os.NewFile(uintptr(fds[0]), "pty"), nil
}

// setup gives the pod's terminal the operator's modes and window size,
// and makes the operator's terminal raw; false if restore came first.
func (t *terminal) setup(m *os.File) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.master = m
	mfd := int(m.Fd())
	if tio, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		t.inTTY = true
		unix.IoctlSetTermios(mfd, unix.TCSETS, tio)
		raw := *tio
		makeRaw(&raw)
		if err := unix.IoctlSetTermios(0, unix.TCSETS, &raw); err == nil {
			t.saved = tio
		} else {
			warn("stage1: make the terminal raw: " + err.Error())
		}
	}
	if t.winsizeFd() >= 0 {
		t.resize()
		signal.Notify(t.winch, unix.SIGWINCH)
		go func() {
			for range t.winch {
				t.mu.Lock()
				if !t.ended {
					t.resize()
				}
				t.mu.Unlock()
			}
		}()
	}
	return true
}

// winsizeFd is the operator's terminal to take the window size from:
// stdin, else stdout, else none (-1).
func (t *terminal) winsizeFd() int {
	for _, fd := range []int{0, 1} {
		if _, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			return fd
		}
	}
	return -1
}

// resize copies the operator's window size to the pod's terminal (whose
// foreground process group then gets SIGWINCH). t.mu is held.
func (t *terminal) resize() {
	if fd := t.winsizeFd(); fd >= 0 {
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
}

// makeRaw is cfmakeraw(3).
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// copyIn copies stdin to the pod's terminal; at the end of a stdin that
// is no terminal, it types the end-of-file character.
func (t *terminal) copyIn(m *os.File) {
	buf := make([]byte, 32<<10)
	last := byte('\n')
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			if _, werr := m.Write(buf[:n]); werr != nil {
				return
			}
			last = buf[n-1]
		}
		if err != nil {
			break
		}
	}
	if t.inTTY {
		return // a hangup: SIGHUP stops the pod
	}
	tio, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&unix.ICANON == 0 {
		return
	}
	eof := []byte{tio.Cc[unix.VEOF]}
	if last != '\n' {
		m.Write(eof) // ends the unfinished line
	}
	m.Write(eof)
}

// copyErr copies the pod's stage1 messages to stderr, with the newlines
// a raw terminal needs.
func (t *terminal) copyErr() {
	defer close(t.errDone)
	buf := make([]byte, 4096)
	for {
		n, err := t.errR.Read(buf)
		if n > 0 {
			b := buf[:n]
			t.mu.Lock()
			if t.saved != nil {
				b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
			}
			t.mu.Unlock()
			os.Stderr.Write(b)
		}
		if err != nil {
			return
		}
	}
}

// finish ends the relay once the pod has exited: the rest of the app's
// output is copied, the operator's terminal restored, the last stage1
// messages copied.
func (t *terminal) finish() {
	select {
	case <-t.served:
	case <-time.After(2 * time.Second):
		// Something outside the pod holds its terminal open.
		t.mu.Lock()
		if t.master != nil {
			t.master.Close()
		}
		t.mu.Unlock()
	}
	t.restore()
	select {
	case <-t.errDone:
	case <-time.After(time.Second):
	}
}

// restore puts the operator's terminal back in its modes; it may be
// called more than once, and before the terminal was set up.
func (t *terminal) restore() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
	signal.Stop(t.winch)
	if t.saved != nil {
		unix.IoctlSetTermios(0, unix.TCSETS, t.saved)
		t.saved = nil
	}
}
