package networking

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/rkt/rkt/networking/netflag"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// NetInfoFile is the file in the pod directory that records the pod's
// networks.
const NetInfoFile = "net-info.json"

// DNS is DNS configuration a network's plugins returned.
type DNS = netflag.DNS

// NetInfo is one network of a pod as recorded in net-info.json: what
// `rkt list` and `rkt status` show, and what Teardown needs to undo it.
type NetInfo struct {
	// Name is the network's name; ConfPath the file it came from ("" for
	// a built-in network).
	Name     string `json:"netName"`
	ConfPath string `json:"netConf,omitempty"`
	// IfName is the pod's interface on this network.
	IfName string `json:"ifName"`
	// IP, Mask and Gateway are the interface's first IPv4 (else IPv6)
	// address; IPs lists every address in CIDR form.
	IP      string   `json:"ip,omitempty"`
	Mask    string   `json:"mask,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	IPs     []string `json:"ips,omitempty"`
	// Args are the CNI_ARGS given with --net=name:K=V.
	Args [][2]string `json:"args,omitempty"`
	// Ports are the host ports forwarded through this network.
	Ports []PortForward `json:"ports,omitempty"`
	DNS   DNS           `json:"dns,omitempty"`
	// Auto is set when the network was added without being asked for
	// (default-restricted).
	Auto bool `json:"auto,omitempty"`
	// NetNS is the network namespace the network was set up in, and
	// NetNSID its device and inode: Teardown only enters it while it is
	// still the same namespace.
	NetNS   string `json:"netns"`
	NetNSID string `json:"netnsID,omitempty"`
	// Config is the CNI configuration list exactly as used for ADD.
	Config json.RawMessage `json:"config"`
	// Result is the CNI result of ADD (the prevResult of DEL); absent
	// while ADD has not completed.
	Result json.RawMessage `json:"result,omitempty"`
}

// LoadNetInfo reads the pod's net-info.json. A pod without one (host or
// none networking, or a pod whose networks are not set up yet) has no
// networks and no error.
func LoadNetInfo(podDir string) ([]NetInfo, error) {
	data, err := os.ReadFile(filepath.Join(podDir, NetInfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the pod's network information: %w", err)
	}
	var nis []NetInfo
	if err := json.Unmarshal(data, &nis); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(podDir, NetInfoFile), err)
	}
	return nis, nil
}

// writeNetInfo replaces the pod's net-info.json atomically (no fsync: the
// file is only useful while the host's network state it describes lives).
func writeNetInfo(podDir string, nis []NetInfo) error {
	data, err := json.MarshalIndent(nis, "", "  ")
	if err != nil {
		return err
	}
	final := filepath.Join(podDir, NetInfoFile)
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write the pod's network information: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the pod's network information: %w", err)
	}
	return nil
}

// fillFromResult copies addresses, gateway and DNS from a CNI result.
func (ni *NetInfo) fillFromResult(r *current.Result) {
	ni.IPs = nil
	first := -1
	for i, ipc := range r.IPs {
		// Only addresses of the pod's own interfaces (or unattributed ones).
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(r.Interfaces) &&
			r.Interfaces[*ipc.Interface].Sandbox == "" {
			continue
		}
		ni.IPs = append(ni.IPs, ipc.Address.String())
		if first < 0 || ipc.Address.IP.To4() != nil && r.IPs[first].Address.IP.To4() == nil {
			first = i
		}
	}
	if first >= 0 {
		ipc := r.IPs[first]
		ni.IP = ipc.Address.IP.String()
		ni.Mask = net.IP(ipc.Address.Mask).String()
		if ipc.Gateway != nil {
			ni.Gateway = ipc.Gateway.String()
		}
	}
	ni.DNS = DNS{Nameservers: r.DNS.Nameservers, Domain: r.DNS.Domain, Search: r.DNS.Search, Options: r.DNS.Options}
}

// ipNets returns the recorded addresses.
func (ni *NetInfo) ipNets() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range ni.IPs {
		if ip, ipn, err := net.ParseCIDR(s); err == nil {
			ipn.IP = ip
			out = append(out, ipn)
		}
	}
	return out
}

// DNSFromNets merges the DNS settings the pod's networks returned, in the
// networks' order, without duplicates; the first domain wins.
func DNSFromNets(nis []NetInfo) DNS {
	var d DNS
	seen := map[string]bool{}
	add := func(list *[]string, kind string, vs []string) {
		for _, v := range vs {
			if !seen[kind+v] {
				seen[kind+v] = true
				*list = append(*list, v)
			}
		}
	}
	for _, ni := range nis {
		add(&d.Nameservers, "n", ni.DNS.Nameservers)
		add(&d.Search, "s", ni.DNS.Search)
		add(&d.Options, "o", ni.DNS.Options)
		if d.Domain == "" {
			d.Domain = ni.DNS.Domain
		}
	}
	return d
}

// HostsFile renders the pod's /etc/hosts with its hostname on the address
// of its first network that was asked for (see netflag.HostsFile).
func HostsFile(entries []HostsEntry, hostname string, nis []NetInfo) []byte {
	ip := ""
	for _, ni := range nis {
		if ni.IP != "" && !ni.Auto {
			ip = ni.IP
			break
		}
	}
	return netflag.HostsFile(entries, hostname, ip)
}
