package networking

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/pkg/lock"
)

// fakePod makes a pod directory <dir>/pods/run/<uuid>, locked (running)
// until the returned function is called.
func fakePod(t *testing.T, dir, uuid string) (string, func()) {
	t.Helper()
	p := filepath.Join(dir, "pods", "run", uuid)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := lock.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TryExclusive(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return p, func() { l.Close() }
}

func TestClaimPorts(t *testing.T) {
	host := t.TempDir()
	port := freePort(t)
	tcp := func(ip string) []PortForward {
		return []PortForward{{HostPort: port, PodPort: 80, Protocol: "tcp", HostIP: ip}}
	}
	dirA, stopA := fakePod(t, t.TempDir(), "aaaa")
	dirB, _ := fakePod(t, t.TempDir(), "bbbb") // another data dir
	if err := claimPorts(host, "aaaa", dirA, tcp("")); err != nil {
		t.Fatal(err)
	}
	// Any address, or one address, against a claim on all of them.
	for _, ip := range []string{"", "127.0.0.1", "0.0.0.0"} {
		err := claimPorts(host, "bbbb", dirB, tcp(ip))
		if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "already forwarded to pod aaaa ("+dirA+")") {
			t.Errorf("hostIP %q: %v, want ErrPortInUse naming pod aaaa", ip, err)
		}
	}
	// UDP is another port.
	if err := claimPorts(host, "bbbb", dirB, []PortForward{{HostPort: port, PodPort: 53, Protocol: "udp"}}); err != nil {
		t.Errorf("udp on the port a pod forwards for tcp: %v", err)
	}
	// Releasing is by owner: b's release leaves a's claim.
	if err := releasePorts(host, "bbbb", tcp("")); err != nil {
		t.Fatal(err)
	}
	if err := claimPorts(host, "bbbb", dirB, tcp("")); !errors.Is(err, ErrPortInUse) {
		t.Errorf("another pod's release freed the port: %v", err)
	}
	// A pod that is gone (its lock is free) holds nothing.
	stopA()
	if err := claimPorts(host, "bbbb", dirB, tcp("")); err != nil {
		t.Errorf("the claim of a pod that no longer runs still holds: %v", err)
	}
	releasePorts(host, "bbbb", tcp(""))
	// Two addresses of the host are two ports.
	dirC, _ := fakePod(t, t.TempDir(), "cccc")
	if err := claimPorts(host, "bbbb", dirB, tcp("127.0.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := claimPorts(host, "cccc", dirC, tcp("127.0.0.3")); err != nil {
		t.Errorf("a forward on another host address: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, portsDirName, fmt.Sprintf("tcp-%d-127.0.0.3", port))); err != nil {
		t.Errorf("no claim file: %v", err)
	}
}

func TestClaimPortsHostListener(t *testing.T) {
	host := t.TempDir()
	dir, _ := fakePod(t, t.TempDir(), "aaaa")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint(l.Addr().(*net.TCPAddr).Port)
	want := fmt.Sprintf("(pid %d) listening on 127.0.0.1:%d", os.Getpid(), port)
	for _, ip := range []string{"", "127.0.0.1"} {
		err := claimPorts(host, "aaaa", dir, []PortForward{{HostPort: port, PodPort: 80, Protocol: "tcp", HostIP: ip}})
		if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), want) {
			t.Errorf("hostIP %q: %v, want ErrPortInUse with %q", ip, err, want)
		}
	}
	if err := claimPorts(host, "aaaa", dir, []PortForward{{HostPort: port, PodPort: 80, Protocol: "tcp", HostIP: "127.0.0.2"}}); err != nil {
		t.Errorf("a forward on another address than the listener's: %v", err)
	}
	u, err := net.ListenPacket("udp6", "[::]:0")
	if err != nil {
		t.Skip("no IPv6:", err)
	}
	defer u.Close()
	uport := uint(u.LocalAddr().(*net.UDPAddr).Port)
	err = claimPorts(host, "aaaa", dir, []PortForward{{HostPort: uport, PodPort: 53, Protocol: "udp"}})
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), fmt.Sprintf("listening on [::]:%d", uport)) {
		t.Errorf("udp6 listener: %v", err)
	}
}
