package networking

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Classes of Setup errors a user can act on.
var (
	// ErrAddressExhausted: the network's address range has no free address.
	ErrAddressExhausted = errors.New("no free address")
	// ErrAddressUnavailable: the address asked for with IP= is used by
	// another pod or outside the network's range.
	ErrAddressUnavailable = errors.New("address not available")
	// ErrPluginNotFound: a network's plugin is not installed.
	ErrPluginNotFound = errors.New("CNI plugin not found")
	// ErrBadArgs: a network's plugin rejects the per-network CNI args
	// (--net=NAME:K=V).
	ErrBadArgs = errors.New("CNI args rejected")
	// ErrPortInUse: a host port asked for with --port is forwarded to
	// another running pod, or a host process listens on it.
	ErrPortInUse = errors.New("host port in use")
	// ErrRouteConflict: a network's address range overlaps a route or an
	// address the host already has.
	ErrRouteConflict = errors.New("address range used by the host")
)

// netError is an error with a message for users, a class and the error
// that caused it.
type netError struct {
	msg          string
	class, cause error
}

func (e *netError) Error() string   { return e.msg }
func (e *netError) Unwrap() []error { return []error{e.class, e.cause} }

// explain turns an ADD failure of network n into an error that says what
// to do, when the cause is one we know.
func explain(n *network, podUUID string, err error) error {
	msg := err.Error()
	where := fmt.Sprintf("network %s (%s)", n.name, n.source())
	switch {
	case strings.Contains(msg, "no IP addresses available in range set"):
		dir := n.leaseDir()
		return &netError{
			msg: fmt.Sprintf("%s: no free address in %s (%d pods use it, leases in %s): run `rkt gc` to collect exited pods, or widen the range in net.d",
				where, joinNets(n.subnets()), countLeases(dir), dir),
			class: ErrAddressExhausted, cause: err,
		}
	case strings.Contains(msg, "requested IP address") || strings.Contains(msg, "is subnet's gateway") ||
		strings.Contains(msg, "duplicate allocation is not allowed") || strings.Contains(msg, "failed to allocate all requested IPs"):
		ip := argValue(n.args, "IP")
		why := fmt.Sprintf("is not available in %s", joinNets(n.subnets()))
		if p := net.ParseIP(ip); p != nil {
			inRange := false
			for _, s := range n.subnets() {
				inRange = inRange || s.Contains(p)
			}
			switch owner := leaseOwner(n.leaseDir(), ip); {
			case !inRange:
				why = fmt.Sprintf("is outside the network's range %s", joinNets(n.subnets()))
			case owner != "" && owner != podUUID:
				why = fmt.Sprintf("is used by pod %s", owner)
			case strings.Contains(msg, "gateway"):
				why = "is the network's gateway"
			}
		}
		return &netError{
			msg:   fmt.Sprintf("%s: IP=%s %s: choose a free address inside the range, or leave IP= out to get one", where, ip, why),
			class: ErrAddressUnavailable, cause: err,
		}
	case strings.Contains(msg, "unknown args"):
		return &netError{
			msg: fmt.Sprintf("%s: %v: the network's plugin does not take these --net args; give the network args it knows, or add IgnoreUnknown=1 to them (--net=%s:IgnoreUnknown=1;...) if a later plugin (host-local's IP=) uses them",
				where, err, n.name),
			class: ErrBadArgs, cause: err,
		}
	case strings.Contains(msg, "failed to find plugin"):
		return &netError{
			msg:   fmt.Sprintf("%s: %v: install rkt's stage1 image with its CNI plugins, or put the plugin in net.d", where, err),
			class: ErrPluginNotFound, cause: err,
		}
	}
	return fmt.Errorf("%s: %w", where, err)
}

func argValue(args [][2]string, key string) string {
	for _, a := range args {
		if a[0] == key {
			return a[1]
		}
	}
	return ""
}

func joinNets(ns []*net.IPNet) string {
	if len(ns) == 0 {
		return "its range"
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return strings.Join(s, ", ")
}

// countLeases counts host-local's lease files (named after addresses).
func countLeases(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			n++
		}
	}
	return n
}

// leaseOwner returns the container ID that leases ip, or "".
func leaseOwner(dir, ip string) string {
	if dir == "" || ip == "" {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(dir, ip))
	if err != nil {
		return ""
	}
	id, _, _ := strings.Cut(string(data), "\r\n")
	return strings.TrimSpace(id)
}

// leasedAddrs finds the addresses host-local leased to the pod's
// interface on a network, with their subnets' masks.
func leasedAddrs(ni *NetInfo, podUUID string) []string {
	n, err := parseNetwork("", ni.Config)
	if err != nil {
		return nil
	}
	dir := n.leaseDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	want := podUUID + "\r\n" + ni.IfName
	var out []string
	for _, e := range entries {
		ip := net.ParseIP(e.Name())
		if ip == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || strings.TrimSpace(string(data)) != want {
			continue
		}
		for _, s := range n.subnets() {
			if s.Contains(ip) {
				out = append(out, (&net.IPNet{IP: ip, Mask: s.Mask}).String())
			}
		}
	}
	return out
}
