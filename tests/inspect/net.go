package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func (p *printer) ifaceCount() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	return p.kv("interfaces", strconv.Itoa(len(ifs)))
}

func (p *printer) ipv4() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return fmt.Errorf("addresses of interface %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			p.kv("ipv4", ifc.Name+" "+ipn.String())
		}
	}
	return nil
}

func (p *printer) getHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("get %s: read body: %w", url, err)
	}
	p.kv("http status", strconv.Itoa(resp.StatusCode))
	return p.kv("http body", string(body))
}

// server is a running --serve-http server.
type server struct {
	errc chan error
}

// wait blocks until the server stops, which only happens on failure.
func (s *server) wait() error {
	return <-s.errc
}

func (p *printer) serveHTTP(addr, body string) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve http: %w", err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	})
	s := &server{errc: make(chan error, 1)}
	go func() {
		err := (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
		s.errc <- fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}()
	return s, p.kv("serving", ln.Addr().String())
}

// sdNotify sends state to the datagram socket named by $NOTIFY_SOCKET, as
// sd_notify(3) does; a name starting with "@" is an abstract socket.
func (p *printer) sdNotify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return errors.New("sd-notify: NOTIFY_SOCKET is not set: run inside a pod started with systemd notify support")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd-notify: connect to %s: %w", sock, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.ReplaceAll(state, `\n`, "\n"))); err != nil {
		return fmt.Errorf("sd-notify: send to %s: %w", sock, err)
	}
	return p.kv("sd-notify", state)
}

// serveFd accepts one connection on the listening socket fd (as a
// socket-activated server does with fd 3) and answers with this
// process's pid and socket activation environment.
func (p *printer) serveFd(fd int) error {
	l, err := net.FileListener(os.NewFile(uintptr(fd), "listener"))
	if err != nil {
		return fmt.Errorf("serve-fd %d: %w", fd, err)
	}
	defer l.Close()
	c, err := l.Accept()
	if err != nil {
		return fmt.Errorf("serve-fd %d: accept: %w", fd, err)
	}
	defer c.Close()
	msg := fmt.Sprintf("served pid=%d LISTEN_PID=%s LISTEN_FDS=%s LISTEN_FDNAMES=%s\n",
		os.Getpid(), os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"))
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("serve-fd %d: %w", fd, err)
	}
	return p.raw(fmt.Sprintf("served: fd %d\n", fd))
}
