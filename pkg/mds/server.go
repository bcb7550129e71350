package mds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/fds"
	"github.com/rkt/rkt/pkg/stage1abi"
)

func tokenPath(podDir string) string { return filepath.Join(podDir, stage1abi.MDSTokenFile) }

// Config is what Serve needs.
type Config struct {
	// Socket is the registration socket's path (made 0600); ignored
	// when systemd passes a listening socket (LISTEN_FDS).
	Socket string
	// Listen are the IP addresses to serve pods on, at Port. They need
	// not exist yet (IP_FREEBIND): the built-in networks' gateways
	// appear with their first pod.
	Listen []string
	Port   int
	// KeyFile holds the host's HMAC key (made if missing).
	KeyFile string
	// DataDirs are rkt data directories whose running registered pods
	// are registered again at start.
	DataDirs []string
	Logf     func(string, ...any)
}

// listenFreebind listens on addr with IP_FREEBIND, so that an address
// not (yet) on any interface can be bound.
func listenFreebind(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp4", addr)
}

// activationListener returns the unix listener systemd passed (socket
// activation, read by pkg/fds: the first socket, at fd 3), or nil.
func activationListener() (*net.UnixListener, error) {
	n, err := fds.Listening()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	if n < 1 {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	unix.CloseOnExec(fds.ListenFdsStart)
	f := os.NewFile(uintptr(fds.ListenFdsStart), "LISTEN_FD_3")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("the socket systemd passed: %w", err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, errors.New("the socket systemd passed is not a unix socket: set ListenStream= to the registration socket's path")
	}
	return ul, nil
}

// listenUnix makes the registration socket, root-only.
func listenUnix(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket left by a service that died is replaced; a live one is
	// not.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: a metadata service is already running", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Serve runs the metadata service until ctx is done.
func Serve(ctx context.Context, cfg Config) error {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	key, err := LoadKey(cfg.KeyFile)
	if err != nil {
		return err
	}
	reg := NewRegistry()
	for _, d := range cfg.DataDirs {
		n, errs := reg.Rebuild(d)
		for _, e := range errs {
			logf("rebuild from %s: %v", d, e)
		}
		if n > 0 {
			logf("registered %d running pods of %s again", n, d)
		}
	}
	ul, err := activationListener()
	if err != nil {
		return err
	}
	if ul == nil {
		if ul, err = listenUnix(cfg.Socket); err != nil {
			return fmt.Errorf("registration socket: %w", err)
		}
		defer os.Remove(cfg.Socket)
	}
	defer ul.Close()
	srv := &http.Server{Handler: &API{Reg: reg, Key: key}, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, a := range cfg.Listen {
		ip := net.ParseIP(a)
		if ip == nil || ip.To4() == nil {
			return fmt.Errorf("listen address %q: not an IPv4 address", a)
		}
		if ip.IsUnspecified() {
			return fmt.Errorf("listen address %s: the service answers pods only: name the gateway or loopback address", a)
		}
		l, err := listenFreebind(ctx, net.JoinHostPort(a, strconv.Itoa(cfg.Port)))
		if err != nil {
			return fmt.Errorf("listen on %s port %d: %w", a, cfg.Port, err)
		}
		ls = append(ls, l)
	}
	errc := make(chan error, len(ls)+1)
	for _, l := range ls {
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}
	go func() { errc <- reg.ServeRegistration(ul, cfg.Port, logf) }()
	logf("metadata service: registration on %s, pods on %v port %d", ul.Addr(), cfg.Listen, cfg.Port)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	ul.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// SocketEnv, if set, moves the registration socket (tests).
const SocketEnv = "RKT_MDS_SOCKET"

// SocketPath is the registration socket: $RKT_MDS_SOCKET, or
// DefaultSocket.
func SocketPath() string {
	if s := os.Getenv(SocketEnv); s != "" {
		return s
	}
	return DefaultSocket
}
