package networking

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rkt/rkt/pkg/lock"

	"golang.org/x/sys/unix"
)

// Host ports are exclusive: a host port (per protocol and host address)
// is forwarded to one running pod at a time, and never one a host
// process listens on (the forward would hide it from the host's own
// clients). Each forward is claimed by a file in <host dir>/ports,
// checked and written under the exclusive flock of <host dir>/ports/.lock,
// so two rkt processes starting at once cannot both take a port, and
// rkts of different data directories see each other's claims. A claim
// is held while its pod runs: its pod directory is locked (the pod's
// lifetime lock). Claims of pods that are gone (killed, say) are stale
// and replaced; teardown removes a pod's own.

// portsDirName is the claims' directory in the host-wide directory.
const portsDirName = "ports"

// portClaim is what a claim file holds.
type portClaim struct {
	Pod    string `json:"pod"`
	PodDir string `json:"podDir"`
	HostIP string `json:"hostIP,omitempty"`
}

// claimName is the claim file of a forward: <protocol>-<port>-<host IP
// or "any">.
func claimName(p PortForward) string {
	ip := "any"
	if a := net.ParseIP(p.HostIP); a != nil && !a.IsUnspecified() {
		ip = a.String()
	}
	return fmt.Sprintf("%s-%d-%s", protocolOf(p), p.HostPort, ip)
}

func protocolOf(p PortForward) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

// sameHostAddr reports whether forwards (or a forward and a listener) on
// host addresses a and b ("" or unspecified: all of them) clash.
func sameHostAddr(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia == nil || ib == nil || ia.IsUnspecified() || ib.IsUnspecified() {
		return true
	}
	return ia.Equal(ib)
}

// lockPorts takes the exclusive lock of the claims' directory.
func lockPorts(hostDir string) (string, *lock.Lock, error) {
	dir := filepath.Join(hostDir, portsDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("claim host ports: %w", err)
	}
	l, err := lock.Create(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", nil, fmt.Errorf("claim host ports: %w", err)
	}
	for {
		err = unix.Flock(int(l.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		l.Close()
		return "", nil, fmt.Errorf("claim host ports: lock %s: %w", l.Path(), err)
	}
	return dir, l, nil
}

// claimPorts claims the pod's host ports, or says which pod or host
// process holds one of them (and claims none).
func claimPorts(hostDir, podUUID, podDir string, ports []PortForward) error {
	if len(ports) == 0 {
		return nil
	}
	dir, l, err := lockPorts(hostDir)
	if err != nil {
		return err
	}
	defer l.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("claim host ports: %w", err)
	}
	for _, p := range ports {
		prefix := fmt.Sprintf("%s-%d-", protocolOf(p), p.HostPort)
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			file := filepath.Join(dir, e.Name())
			var c portClaim
			data, err := os.ReadFile(file)
			if err != nil || json.Unmarshal(data, &c) != nil || c.Pod == podUUID || !podRunning(c) {
				if c.Pod != podUUID {
					os.Remove(file) // stale: its pod is gone
				}
				continue
			}
			if sameHostAddr(p.HostIP, c.HostIP) {
				return &netError{
					msg: fmt.Sprintf("--port %s: host port %d/%s is already forwarded to pod %s (%s): stop that pod, or forward another host port",
						describePort(p), p.HostPort, protocolOf(p), c.Pod, c.PodDir),
					class: ErrPortInUse, cause: ErrPortInUse,
				}
			}
		}
		if l := hostListener(p); l != "" {
			return &netError{
				msg: fmt.Sprintf("--port %s: host port %d/%s is in use by %s, which the forward would hide from the host's own clients: stop it, or forward another host port",
					describePort(p), p.HostPort, protocolOf(p), l),
				class: ErrPortInUse, cause: ErrPortInUse,
			}
		}
	}
	for _, p := range ports {
		data, err := json.Marshal(portClaim{Pod: podUUID, PodDir: podDir, HostIP: p.HostIP})
		if err != nil {
			return err
		}
		file := filepath.Join(dir, claimName(p))
		tmp := file + ".tmp-" + podUUID
		if err = os.WriteFile(tmp, data, 0o644); err == nil {
			err = os.Rename(tmp, file)
		}
		if err != nil {
			os.Remove(tmp)
			releaseLocked(dir, podUUID, ports)
			return fmt.Errorf("claim host port %d/%s: %w", p.HostPort, protocolOf(p), err)
		}
	}
	return nil
}

// releasePorts removes the pod's claims of ports (those another pod
// holds stay).
func releasePorts(hostDir, podUUID string, ports []PortForward) error {
	if len(ports) == 0 {
		return nil
	}
	dir, l, err := lockPorts(hostDir)
	if err != nil {
		return err
	}
	defer l.Close()
	releaseLocked(dir, podUUID, ports)
	return nil
}

func releaseLocked(dir, podUUID string, ports []PortForward) {
	for _, p := range ports {
		file := filepath.Join(dir, claimName(p))
		var c portClaim
		if data, err := os.ReadFile(file); err == nil && json.Unmarshal(data, &c) == nil && c.Pod == podUUID {
			os.Remove(file)
		}
	}
}

// podRunning reports whether a claim's pod still runs: its directory is
// there, named after it, and locked.
func podRunning(c portClaim) bool {
	if c.PodDir == "" || filepath.Base(c.PodDir) != c.Pod {
		return false
	}
	l, err := lock.Open(c.PodDir)
	if err != nil {
		return false
	}
	defer l.Close()
	return errors.Is(l.TryShared(), lock.ErrLocked)
}

func describePort(p PortForward) string {
	s := strconv.FormatUint(uint64(p.HostPort), 10)
	if p.HostIP != "" {
		s = net.JoinHostPort(p.HostIP, s)
	}
	return fmt.Sprintf("%s:%d/%s", s, p.PodPort, protocolOf(p))
}

// hostListener describes a socket of the host's network namespace that
// listens on (tcp) or is bound to (udp) the forward's host port and
// address, "" if there is none.
func hostListener(p PortForward) string {
	proto := protocolOf(p)
	for _, f := range []string{proto, proto + "6"} {
		addr, inode := findBound(filepath.Join("/proc/self/net", f), p, proto == "tcp")
		if addr == "" {
			continue
		}
		return fmt.Sprintf("%s listening on %s", socketOwner(inode), addr)
	}
	return ""
}

// findBound scans a /proc/net/{tcp,udp}[6] table for a listening (tcp)
// or unconnected (udp) socket on the forward's port and a clashing
// address. It returns the socket's address and inode.
func findBound(table string, p PortForward, tcp bool) (string, string) {
	f, err := os.Open(table)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	want := "0A" // TCP_LISTEN
	if !tcp {
		want = "07" // TCP_CLOSE: a bound, unconnected UDP socket
	}
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != want {
			continue
		}
		hexIP, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || uint(port) != p.HostPort {
			continue
		}
		ip := procNetIP(hexIP)
		if ip == nil || !sameHostAddr(p.HostIP, ip.String()) {
			continue
		}
		return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), fields[9]
	}
	return "", ""
}

// procNetIP decodes an address of /proc/net/tcp: 32-bit words in host
// (little-endian here) byte order.
func procNetIP(s string) net.IP {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// socketOwner names the process that has the socket with the inode open,
// or says it is a host process.
func socketOwner(inode string) string {
	target := "socket:[" + inode + "]"
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, fdDir := range procs {
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && l == target {
				pid := filepath.Base(filepath.Dir(fdDir))
				comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
				return fmt.Sprintf("host process %s (pid %s)", strings.TrimSpace(string(comm)), pid)
			}
		}
	}
	return "a host process"
}
