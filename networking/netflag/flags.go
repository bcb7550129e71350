package netflag

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Names with a meaning of their own in --net.
const (
	// NetDefault is the built-in default network (ptp, host-local
	// 172.16.28.0/24, IP masquerading), unless net.d defines one.
	NetDefault = "default"
	// NetDefaultRestricted is the built-in host-only network added when
	// the pod does not join the default network.
	NetDefaultRestricted = "default-restricted"
	// NetAll stands for every configured network.
	NetAll = "all"
	// NetHost and NetNone are the two networking modes without CNI.
	NetHost = "host"
	NetNone = "none"
)

// ErrBadFlag is the class of errors about a flag's syntax.
var ErrBadFlag = errors.New("bad flag value")

// Request is one entry of --net: a network name and the CNI_ARGS to pass
// to its plugins ("name" or "name:K=V;K2=V2").
type Request struct {
	Name string
	Args [][2]string
}

// String gives the request back in --net syntax.
func (r Request) String() string {
	if len(r.Args) == 0 {
		return r.Name
	}
	kv := make([]string, len(r.Args))
	for i, a := range r.Args {
		kv[i] = a[0] + "=" + a[1]
	}
	return r.Name + ":" + strings.Join(kv, ";")
}

// ParseNetFlag parses --net. "" means the default network. host and none
// exclude every other entry; "all" may be combined with per-network
// arguments for named networks ("all,foo:IP=10.1.2.3"). A network may be
// named once.
func ParseNetFlag(s string) (reqs []Request, host bool, none bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return []Request{{Name: NetDefault}}, false, false, nil
	}
	seen := map[string]bool{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		name, args, hasArgs := strings.Cut(entry, ":")
		if err := CheckNetName(name); err != nil {
			return nil, false, false, fmt.Errorf("--net=%s: %w", s, err)
		}
		if seen[name] {
			return nil, false, false, fmt.Errorf("--net=%s: network %q is named twice: name it once, with all its arguments: %w", s, name, ErrBadFlag)
		}
		seen[name] = true
		switch name {
		case NetHost, NetNone, NetAll:
			if hasArgs {
				return nil, false, false, fmt.Errorf("--net=%s: %q takes no arguments: %w", s, name, ErrBadFlag)
			}
		}
		switch name {
		case NetHost:
			host = true
			continue
		case NetNone:
			none = true
			continue
		}
		r := Request{Name: name}
		if hasArgs {
			if r.Args, err = parseCNIArgs(args); err != nil {
				return nil, false, false, fmt.Errorf("--net=%s: network %s: %w", s, name, err)
			}
		}
		reqs = append(reqs, r)
	}
	if (host || none) && len(seen) > 1 {
		return nil, false, false, fmt.Errorf("--net=%s: host and none cannot be combined with other networks: %w", s, ErrBadFlag)
	}
	return reqs, host, none, nil
}

// CheckNetName checks a network name given in --net or net.d.
func CheckNetName(name string) error {
	if name == "" {
		return fmt.Errorf("empty network name: %w", ErrBadFlag)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("network name %q: only letters, digits, '-', '_' and '.' are allowed: %w", name, ErrBadFlag)
		}
	}
	return nil
}

// parseCNIArgs parses "K=V;K2=V2".
func parseCNIArgs(s string) ([][2]string, error) {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("argument %q: want KEY=VALUE (several separated by ';'): %w", kv, ErrBadFlag)
		}
		if k == "IP" && net.ParseIP(v) == nil {
			return nil, fmt.Errorf("argument IP=%s: not an IP address: %w", v, ErrBadFlag)
		}
		out = append(out, [2]string{k, v})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty argument list after ':': %w", ErrBadFlag)
	}
	return out, nil
}

// PortFlag is one --port flag, before it is matched with the image's ports.
// Either Name is set (NAME:[HOSTIP:]HOSTPORT, a port named in the image
// manifest) or PodPort is (HOSTPORT:PODPORT[/tcp|udp], for images that
// name no ports).
type PortFlag struct {
	Name     string
	HostIP   string
	HostPort uint
	PodPort  uint
	Protocol string // for PodPort forms: tcp (default) or udp
}

// ParsePortFlag parses one --port value: NAME:[HOSTIP:]HOSTPORT or
// [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp].
func ParsePortFlag(s string) (PortFlag, error) {
	bad := func(why string) (PortFlag, error) {
		return PortFlag{}, fmt.Errorf("--port=%s: %s; want NAME:[HOSTIP:]HOSTPORT or [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]: %w", s, why, ErrBadFlag)
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("wrong number of ':'")
	}
	var f PortFlag
	if _, err := strconv.ParseUint(parts[0], 10, 16); err != nil && len(parts) == 2 || len(parts) == 3 && net.ParseIP(parts[0]) == nil {
		// A named port: NAME:HOSTPORT or NAME:HOSTIP:HOSTPORT.
		if hasProto {
			return bad("a named port has the protocol of the image's port")
		}
		f.Name = parts[0]
		if f.Name == "" {
			return bad("empty port name")
		}
		if len(parts) == 3 {
			f.HostIP = parts[1]
			if net.ParseIP(f.HostIP) == nil {
				return bad(fmt.Sprintf("%q is not an IP address", f.HostIP))
			}
		}
		p, err := parsePort(parts[len(parts)-1])
		if err != nil {
			return bad(err.Error())
		}
		f.HostPort = p
		return f, nil
	}
	if len(parts) == 3 {
		f.HostIP = parts[0]
		parts = parts[1:]
	}
	var err error
	if f.HostPort, err = parsePort(parts[0]); err != nil {
		return bad(err.Error())
	}
	if f.PodPort, err = parsePort(parts[1]); err != nil {
		return bad(err.Error())
	}
	f.Protocol = "tcp"
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return bad(fmt.Sprintf("protocol %q", proto))
		}
		f.Protocol = proto
	}
	return f, nil
}

func parsePort(s string) (uint, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint(n), nil
}

// ManifestPort is a port an image manifest names (appc "ports").
type ManifestPort struct {
	Name     string
	Protocol string
	Port     uint
}

// PortForward is a host port forwarded to a port of the pod.
type PortForward struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"`
	PodPort  uint   `json:"podPort"`
	HostPort uint   `json:"hostPort"`
	HostIP   string `json:"hostIP,omitempty"`
}

// ResolvePorts matches --port flags with the ports the pod's images name.
// Two forwards of one host port and protocol are an error, as are names
// no image declares.
func ResolvePorts(flags []PortFlag, named []ManifestPort) ([]PortForward, error) {
	var out []PortForward
	used := map[string]string{}
	for _, f := range flags {
		pf := PortForward{Name: f.Name, HostPort: f.HostPort, HostIP: f.HostIP, PodPort: f.PodPort, Protocol: f.Protocol}
		if f.Name != "" {
			found := false
			var names []string
			for _, p := range named {
				names = append(names, p.Name)
				if p.Name == f.Name {
					pf.PodPort, pf.Protocol, found = p.Port, strings.ToLower(p.Protocol), true
					break
				}
			}
			if !found {
				if len(names) == 0 {
					return nil, fmt.Errorf("--port %s: the pod's images name no ports: use --port=%d:PODPORT[/tcp|udp]: %w", f.Name, f.HostPort, ErrBadFlag)
				}
				return nil, fmt.Errorf("--port %s: no image of the pod names this port (they name %s): %w", f.Name, strings.Join(names, ", "), ErrBadFlag)
			}
			if pf.Protocol == "" {
				pf.Protocol = "tcp"
			}
			if pf.Protocol != "tcp" && pf.Protocol != "udp" {
				return nil, fmt.Errorf("--port %s: protocol %q cannot be forwarded (tcp and udp can): %w", f.Name, pf.Protocol, ErrBadFlag)
			}
		}
		key := fmt.Sprintf("%s/%s:%d", pf.Protocol, pf.HostIP, pf.HostPort)
		if prev, ok := used[key]; ok {
			return nil, fmt.Errorf("--port: host port %d/%s is forwarded twice (%s and %s): %w", pf.HostPort, pf.Protocol, prev, portLabel(pf), ErrBadFlag)
		}
		used[key] = portLabel(pf)
		out = append(out, pf)
	}
	return out, nil
}

func portLabel(p PortForward) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%d:%d/%s", p.HostPort, p.PodPort, p.Protocol)
}
