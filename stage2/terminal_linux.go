package stage2

import (
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/stage1/supervisor"
)

// podTerminal is an interactive app's pseudo-terminal, from the app's
// own devpts instance: the launcher keeps the slave until it execs the
// app; the host-side process has the master and relays it to the
// operator's terminal, which never reaches the pod.
type podTerminal struct {
	sock  *os.File // to the host-side process (supervisor.LaunchTerminalFd)
	slave int
}

// openTerminal opens a pseudo-terminal in the devpts instance mounted at
// pts (a path in the launcher's mount namespace) and sends its master to
// the host-side process over sock.
func openTerminal(sock *os.File, pts string) (*podTerminal, error) {
	ptmx := filepath.Join(pts, "ptmx")
	m, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, setupErr("open the app's terminal: open %s: %w", ptmx, err)
	}
	defer unix.Close(m)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return nil, setupErr("open the app's terminal: unlock it: %w", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		return nil, setupErr("open the app's terminal: its number: %w", err)
	}
	name := filepath.Join(pts, strconv.Itoa(n))
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, setupErr("open the app's terminal: open %s: %w", name, err)
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte(supervisor.TerminalMaster), unix.UnixRights(m), nil, 0); err != nil {
		unix.Close(s)
		return nil, setupErr("open the app's terminal: send it to rkt: %w", err)
	}
	return &podTerminal{sock: sock, slave: s}, nil
}

// attach waits for the host-side process to have set the terminal up,
// then makes it the process's controlling terminal (in a session of its
// own) and its stdin, stdout and stderr, owned by the app's user.
func (t *podTerminal) attach(id Identity) error {
	buf := make([]byte, len(supervisor.TerminalReady))
	_, err := io.ReadFull(t.sock, buf)
	t.sock.Close()
	if err != nil || string(buf) != supervisor.TerminalReady {
		return setupErr("the app's terminal: rkt did not take it (its terminal relay failed)")
	}
	defer unix.Close(t.slave)
	if err := unix.Fchown(t.slave, id.UID, id.GID); err != nil {
		return setupErr("the app's terminal: give it to uid %d: %w", id.UID, err)
	}
	unix.Setsid() // EPERM: already a session leader, as the supervisor starts it
	if err := unix.IoctlSetInt(t.slave, unix.TIOCSCTTY, 0); err != nil {
		return setupErr("the app's terminal: make it the controlling terminal: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(t.slave, fd, 0); err != nil {
			return setupErr("the app's terminal: make it fd %d: %w", fd, err)
		}
	}
	return nil
}
