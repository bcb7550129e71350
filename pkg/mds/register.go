package mds

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The registration protocol, over the unix socket (one request per
// connection, lines of at most maxLine bytes):
//
//	rkt (root)                          service
//	register <absolute pod dir>\n  -->  reads the pod's manifest, image
//	                                    manifests and mds-token file
//	                               <--  ok <port>\n | error <reason>\n
//	unregister <uuid>\n            -->
//	                               <--  ok\n | error <reason>\n
//
// The service answers only a peer whose SO_PEERCRED uid is 0.
const maxLine = 4096

// NewToken returns a new pod token: 128 random bits, in hex.
func NewToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// peerUID returns the uid of the process at the other end of a unix
// socket connection.
func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// ServeRegistration answers registration requests on l until it is
// closed. port is the TCP port it tells registered pods.
func (r *Registry) ServeRegistration(l *net.UnixListener, port int, logf func(string, ...any)) error {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go r.handleRegistration(c, port, logf)
	}
}

func (r *Registry) handleRegistration(c *net.UnixConn, port int, logf func(string, ...any)) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	answer := func(format string, args ...any) { fmt.Fprintf(c, format+"\n", args...) }
	uid, err := peerUID(c)
	if err != nil || uid != 0 {
		logf("registration refused: peer uid %d is not root (%v)", uid, err)
		answer("error only root may register pods")
		return
	}
	line, err := readLine(bufio.NewReader(c), maxLine)
	if err != nil {
		answer("error bad request: %v", err)
		return
	}
	verb, arg, _ := strings.Cut(line, " ")
	switch verb {
	case "register":
		if err := r.Register(arg); err != nil {
			logf("register %s: %v", arg, err)
			answer("error %v", err)
			return
		}
		logf("registered pod %s", arg)
		answer("ok %d", port)
	case "unregister":
		r.Unregister(arg)
		logf("unregistered pod %s", arg)
		answer("ok")
	default:
		answer("error unknown request %q", verb)
	}
}

// ErrNotRunning is returned by the client when no service listens on
// the registration socket.
var ErrNotRunning = errors.New("the metadata service is not running")

// request sends one request and returns the answer after "ok".
func request(ctx context.Context, socket, line string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("%s: %w", socket, ErrNotRunning)
		}
		return "", fmt.Errorf("reach the metadata service at %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	// A refusal (a caller that is not root) is answered and the
	// connection closed as soon as it is accepted, maybe before the
	// request is written: read the answer even when the write failed, so
	// that the caller learns why.
	_, werr := io.WriteString(c, line+"\n")
	ans, err := readLine(bufio.NewReader(c), maxLine)
	if err != nil {
		if werr != nil {
			return "", fmt.Errorf("metadata service at %s: %w", socket, werr)
		}
		return "", fmt.Errorf("metadata service at %s: no answer: %w", socket, err)
	}
	if rest, ok := strings.CutPrefix(ans, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("metadata service: %s", strings.TrimPrefix(ans, "error "))
}

// RegisterPod registers the pod directory podDir (absolute) with the
// service at socket: it writes the pod's token to its mds-token file
// (root-only), asks the service to register the pod, and adds the port
// the service answered to the file, for stage1. It returns the token.
// When no service runs, the error wraps ErrNotRunning and nothing is
// left behind.
func RegisterPod(ctx context.Context, socket, podDir string) (string, error) {
	if _, err := os.Stat(socket); err != nil {
		return "", fmt.Errorf("%s: %w", socket, ErrNotRunning)
	}
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	p := tokenPath(podDir)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", fmt.Errorf("write the pod's metadata token: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(token + "\n"); err != nil {
		os.Remove(p)
		return "", fmt.Errorf("write the pod's metadata token: %w", err)
	}
	ans, err := request(ctx, socket, "register "+podDir)
	if err != nil {
		os.Remove(p)
		return "", err
	}
	port, err := strconv.Atoi(ans)
	if err != nil || port <= 0 || port > 65535 {
		os.Remove(p)
		return "", fmt.Errorf("metadata service: bad answer %q", ans)
	}
	if _, err := f.WriteString(strconv.Itoa(port) + "\n"); err != nil {
		os.Remove(p)
		return "", fmt.Errorf("write the pod's metadata token: %w", err)
	}
	return token, f.Close()
}

// UnregisterPod tells the service at socket to forget the pod. No
// service running is not an error (it would not know the pod after a
// restart either).
func UnregisterPod(ctx context.Context, socket, uuid string) error {
	if _, err := request(ctx, socket, "unregister "+uuid); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	return nil
}
