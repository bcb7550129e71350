package networking

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rkt/rkt/networking/netflag"

	"github.com/containernetworking/cni/libcni"
)

// ErrNoNetwork is the class of errors about a network that is not
// configured.
var ErrNoNetwork = errors.New("network not found")

// ErrConfig is the class of errors about a network configuration.
var ErrConfig = errors.New("bad network configuration")

// Config says where networks, plugins and IPAM leases are.
type Config struct {
	// LocalConfig is rkt's local configuration directory; networks are
	// read from LocalConfig/net.d/*.conf and *.conflist.
	LocalConfig string
	// PluginDirs are searched in order for CNI plugins: usually
	// <LocalConfig>/net.d, /usr/lib/rkt/plugins/net and the stage1
	// image's <rootfs>/usr/lib/rkt/plugins/net.
	PluginDirs []string
	// DataDir is where host-local IPAM keeps its leases (one directory per
	// network): host-wide, LeaseDir(HostDir()), so that two rkt --dirs
	// never lease one address twice; networks that set ipam.dataDir
	// themselves keep theirs.
	DataDir string
	// HostDir is the host-wide state directory (port claims, locks), ""
	// for HostDir().
	HostDir string
	// Logf, if set, is told what Setup and Teardown do, with timings.
	Logf func(format string, args ...any)
	// LoopbackReady: the caller brings lo up in the network namespace
	// itself (stage1's supervisor does, while the networks are set up);
	// else Setup does.
	LoopbackReady bool
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// NetDir is the directory of the administrator's networks.
func (c *Config) NetDir() string {
	if c.LocalConfig == "" {
		return ""
	}
	return filepath.Join(c.LocalConfig, "net.d")
}

// The built-in networks. host-local's dataDir is filled in by load. The
// default network masquerades, but not with its plugin's per-pod rules:
// rkt keeps one shared rule for its whole subnet (see masqRule).
const (
	defaultSubnet           = "172.16.28.0/24"
	defaultRestrictedSubnet = "172.31.0.0/16"
	builtinDefault          = `{
  "cniVersion": "1.0.0",
  "name": "default",
  "plugins": [{
    "type": "ptp",
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "` + defaultSubnet + `"}]],
      "routes": [{"dst": "0.0.0.0/0"}]
    }
  }]
}`
	builtinDefaultRestricted = `{
  "cniVersion": "1.0.0",
  "name": "default-restricted",
  "plugins": [{
    "type": "ptp",
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "` + defaultRestrictedSubnet + `"}]]
    }
  }]
}`
	// portmapConf is chained on the network that gets --port forwards.
	portmapConf = `{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}`
	// defaultBridge is the bridge name of bridge networks that name none.
	defaultBridge = "rkt0"
)

// network is one network as loaded for a pod.
type network struct {
	name string
	// file is where the network was defined; "" for built-ins.
	file string
	// conf is the configuration list as JSON, after load's additions.
	conf map[string]any
	// auto marks default-restricted when it was added, not asked for.
	auto bool
	// sharedMasq marks the built-in default network: its traffic leaving
	// the subnet is masqueraded by one rule rkt installs for the whole
	// subnet (masqRules), not by its plugin.
	sharedMasq bool

	// Filled in by plan.
	ifName string
	args   [][2]string
	ports  []PortForward
}

func (n *network) source() string {
	if n.file == "" {
		return "built-in"
	}
	return n.file
}

// plugins returns the network's plugin configurations (JSON objects).
func (n *network) plugins() []map[string]any {
	ps, _ := n.conf["plugins"].([]any)
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		if m, ok := p.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// ipMasq reports whether the network masquerades: by its main plugin,
// or by rkt's shared rule.
func (n *network) ipMasq() bool {
	if n.sharedMasq {
		return true
	}
	ps := n.plugins()
	if len(ps) == 0 {
		return false
	}
	b, _ := ps[0]["ipMasq"].(bool)
	return b
}

// hostLocal returns the host-local IPAM configuration of the network's
// plugins, or nil.
func (n *network) hostLocal() map[string]any {
	for _, p := range n.plugins() {
		if ipam, ok := p["ipam"].(map[string]any); ok && ipam["type"] == "host-local" {
			return ipam
		}
	}
	return nil
}

// leaseDir is where host-local keeps the network's leases, "" if the
// network does not use host-local.
func (n *network) leaseDir() string {
	ipam := n.hostLocal()
	if ipam == nil {
		return ""
	}
	dir, _ := ipam["dataDir"].(string)
	if dir == "" {
		dir = "/var/lib/cni/networks"
	}
	return filepath.Join(dir, n.name)
}

// subnets returns the address ranges of the network's host-local IPAM.
func (n *network) subnets() []*net.IPNet {
	ipam := n.hostLocal()
	if ipam == nil {
		return nil
	}
	var out []*net.IPNet
	add := func(s any) {
		if str, ok := s.(string); ok {
			if _, ipn, err := net.ParseCIDR(str); err == nil {
				out = append(out, ipn)
			}
		}
	}
	add(ipam["subnet"])
	rangeSets, _ := ipam["ranges"].([]any)
	for _, rs := range rangeSets {
		rs, _ := rs.([]any)
		for _, r := range rs {
			if r, ok := r.(map[string]any); ok {
				add(r["subnet"])
			}
		}
	}
	return out
}

// bridgeName is the bridge of a bridge network, "" for other networks.
func (n *network) bridgeName() string {
	for _, p := range n.plugins() {
		if p["type"] == "bridge" {
			if b, _ := p["bridge"].(string); b != "" {
				return b
			}
			return defaultBridge
		}
	}
	return ""
}

func (n *network) bytes() ([]byte, error) {
	return json.Marshal(n.conf)
}

func (n *network) confList() (*libcni.NetworkConfigList, error) {
	b, err := n.bytes()
	if err != nil {
		return nil, err
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("network %s (%s): %w: %w", n.name, n.source(), ErrConfig, err)
	}
	return l, nil
}

// parseNetwork reads a .conf or .conflist and returns it as a list.
func parseNetwork(file string, data []byte) (*network, error) {
	var conf map[string]any
	if err := json.Unmarshal(data, &conf); err != nil {
		return nil, fmt.Errorf("network file %s: %w: %w: fix or remove the file", file, ErrConfig, err)
	}
	name, _ := conf["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("network file %s: %w: no \"name\": give the network a name", file, ErrConfig)
	}
	if err := netflag.CheckNetName(name); err != nil {
		return nil, fmt.Errorf("network file %s: %w", file, err)
	}
	switch name {
	case NetHost, NetNone, NetAll:
		return nil, fmt.Errorf("network file %s: %w: the name %q is reserved for --net=%s: rename the network", file, ErrConfig, name, name)
	}
	if _, isList := conf["plugins"]; !isList {
		if _, ok := conf["type"].(string); !ok {
			return nil, fmt.Errorf("network file %s: %w: neither \"plugins\" nor \"type\": a network needs a plugin", file, ErrConfig)
		}
		version := conf["cniVersion"]
		plugin := make(map[string]any, len(conf))
		for k, v := range conf {
			if k != "name" && k != "cniVersion" {
				plugin[k] = v
			}
		}
		conf = map[string]any{"name": name, "plugins": []any{plugin}}
		if version != nil {
			conf["cniVersion"] = version
		}
	}
	ps, ok := conf["plugins"].([]any)
	if !ok || len(ps) == 0 {
		return nil, fmt.Errorf("network file %s: %w: \"plugins\" must be a non-empty list", file, ErrConfig)
	}
	for i, p := range ps {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("network file %s: %w: plugin %d is not an object", file, ErrConfig, i)
		}
		if t, _ := m["type"].(string); t == "" {
			return nil, fmt.Errorf("network file %s: %w: plugin %d has no \"type\"", file, ErrConfig, i)
		}
	}
	return &network{name: name, file: file, conf: conf}, nil
}

// loadAll returns the built-in networks and those of net.d, by name, and
// the names of net.d's networks in file order.
func (c *Config) loadAll() (map[string]*network, []string, error) {
	nets := map[string]*network{}
	for _, b := range []string{builtinDefault, builtinDefaultRestricted} {
		n, err := parseNetwork("", []byte(b))
		if err != nil {
			return nil, nil, err
		}
		n.sharedMasq = n.name == NetDefault
		nets[n.name] = n
	}
	dir := c.NetDir()
	if dir == "" {
		return nets, nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("read the network configurations in %s: %w", dir, err)
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); (ext == ".conf" || ext == ".conflist") && !e.IsDir() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	user := map[string]string{}
	var order []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read network file: %w", err)
		}
		n, err := parseNetwork(f, data)
		if err != nil {
			return nil, nil, err
		}
		if prev, ok := user[n.name]; ok {
			return nil, nil, fmt.Errorf("networks in %s and %s are both named %q: %w: rename one of them", prev, f, n.name, ErrConfig)
		}
		user[n.name] = f
		order = append(order, n.name)
		nets[n.name] = n
	}
	return nets, order, nil
}

// plan loads the networks reqs name, in order, adds default-restricted
// when the pod is not on the default network, names the interfaces,
// chains portmap on the network that gets the ports, and fills in where
// host-local keeps leases.
func (c *Config) plan(reqs []Request, ports []PortForward) ([]*network, error) {
	all, userOrder, err := c.loadAll()
	if err != nil {
		return nil, err
	}
	var names []string
	args := map[string][][2]string{}
	wantAll := false
	for _, r := range reqs {
		if r.Name == NetHost || r.Name == NetNone {
			return nil, fmt.Errorf("--net=%s has no networks to set up: %w", r.Name, ErrBadFlag)
		}
		if r.Name == NetAll {
			wantAll = true
			continue
		}
		args[r.Name] = r.Args
		names = append(names, r.Name)
	}
	if wantAll {
		listed := map[string]bool{}
		names = names[:0]
		for _, n := range append([]string{NetDefault}, userOrder...) {
			if !listed[n] {
				listed[n] = true
				names = append(names, n)
			}
		}
		for _, r := range reqs {
			if r.Name != NetAll && !listed[r.Name] {
				listed[r.Name] = true
				names = append(names, r.Name)
			}
		}
	}
	var nets []*network
	hasDefault := false
	for _, name := range names {
		n, ok := all[name]
		if !ok {
			return nil, fmt.Errorf("network %q: %w in %s: define it there, or use default, default-restricted, none, host or all", name, ErrNoNetwork, c.netDirOrNone())
		}
		cp := *n
		cp.conf = deepCopy(n.conf)
		cp.args = args[name]
		nets = append(nets, &cp)
		if name == NetDefault {
			hasDefault = true
		}
	}
	if !hasDefault && all[NetDefaultRestricted] != nil {
		present := false
		for _, n := range nets {
			present = present || n.name == NetDefaultRestricted
		}
		if !present {
			cp := *all[NetDefaultRestricted]
			cp.conf = deepCopy(cp.conf)
			cp.auto = true
			nets = append(nets, &cp)
		}
	}
	if len(nets) == 0 {
		return nil, fmt.Errorf("no networks to set up: %w", ErrBadFlag)
	}
	if err := checkOverlaps(nets); err != nil {
		return nil, err
	}
	backend := firewallBackend()
	for i, n := range nets {
		n.ifName = fmt.Sprintf("eth%d", i)
		for _, p := range n.plugins() {
			if n.file == "" && p["ipMasq"] == true {
				if _, set := p["ipMasqBackend"]; !set {
					p["ipMasqBackend"] = backend
				}
			}
			if ipam, ok := p["ipam"].(map[string]any); ok && ipam["type"] == "host-local" && c.DataDir != "" {
				if _, set := ipam["dataDir"]; !set {
					ipam["dataDir"] = c.DataDir
				}
			}
			if p["type"] == "bridge" {
				if _, set := p["bridge"]; !set {
					p["bridge"] = defaultBridge
				}
			}
		}
	}
	if len(ports) > 0 {
		t := portTarget(nets)
		t.ports = ports
		// A network whose own plugins take port mappings keeps them.
		hasPortmap := false
		for _, p := range t.plugins() {
			caps, _ := p["capabilities"].(map[string]any)
			hasPortmap = hasPortmap || p["type"] == "portmap" || caps["portMappings"] == true
		}
		if !hasPortmap {
			var pm map[string]any
			if err := json.Unmarshal([]byte(portmapConf), &pm); err != nil {
				return nil, err
			}
			pm["backend"] = backend
			t.conf["plugins"] = append(t.conf["plugins"].([]any), pm)
		}
	}
	return nets, nil
}

// firewallBackend picks the plugins' firewall backend for the networks
// rkt configures itself: iptables when installed (the plugins' own
// default, but naming it spares each plugin two iptables runs to find
// out), else nftables.
func firewallBackend() string {
	if _, err := exec.LookPath("iptables"); err == nil {
		return "iptables"
	}
	return "nftables"
}

func (c *Config) netDirOrNone() string {
	if d := c.NetDir(); d != "" {
		return d
	}
	return "net.d (no --local-config)"
}

// portTarget is the network that gets the pod's port forwards: the first
// that masquerades, else the last one asked for.
func portTarget(nets []*network) *network {
	for _, n := range nets {
		if n.ipMasq() {
			return n
		}
	}
	for i := len(nets) - 1; i >= 0; i-- {
		if !nets[i].auto {
			return nets[i]
		}
	}
	return nets[len(nets)-1]
}

// checkOverlaps refuses two networks of one pod whose address ranges
// overlap: the pod's routes to them would clash.
func checkOverlaps(nets []*network) error {
	for i, a := range nets {
		for _, b := range nets[i+1:] {
			for _, sa := range a.subnets() {
				for _, sb := range b.subnets() {
					if sa.Contains(sb.IP) || sb.Contains(sa.IP) {
						return fmt.Errorf("networks %s (%s) and %s (%s) use overlapping address ranges %s and %s: %w: give one of them another subnet in %s, or do not join both",
							a.name, a.source(), b.name, b.source(), sa, sb, ErrConfig, "net.d")
					}
				}
			}
		}
	}
	return nil
}

// deepCopy copies a JSON value made of maps, slices and scalars.
func deepCopy(m map[string]any) map[string]any {
	var cp func(v any) any
	cp = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(v))
			for k, x := range v {
				out[k] = cp(x)
			}
			return out
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = cp(x)
			}
			return out
		default:
			return v
		}
	}
	return cp(m).(map[string]any)
}

// describeNets lists networks for messages.
func describeNets(nets []*network) string {
	s := make([]string, len(nets))
	for i, n := range nets {
		s[i] = n.name
	}
	return strings.Join(s, ",")
}
