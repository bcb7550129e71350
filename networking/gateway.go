package networking

import (
	"fmt"
	"net"
)

// HostAddress returns the host's address on the pod's first built-in
// network (default, or the default-restricted that is added when default
// is not asked for), else on its first network: the gateway its
// host-local IPAM gives the pod (the range's gateway, else the subnet's
// first address), which ptp and bridge put on the host side. It is
// where a pod reaches a service of the host, the metadata service.
func (c *Config) HostAddress(reqs []Request) (net.IP, error) {
	nets, err := c.plan(reqs, nil)
	if err != nil {
		return nil, err
	}
	n := nets[0]
	for _, b := range nets {
		if b.file == "" {
			n = b
			break
		}
	}
	ipam := n.hostLocal()
	if ipam == nil {
		return nil, fmt.Errorf("network %s has no host-local IPAM: the host's address on it is not known", n.name)
	}
	gw := func(m map[string]any) net.IP {
		if s, ok := m["gateway"].(string); ok {
			return net.ParseIP(s)
		}
		if s, ok := m["subnet"].(string); ok {
			if _, ipn, err := net.ParseCIDR(s); err == nil {
				ip := append(net.IP(nil), ipn.IP...)
				ip[len(ip)-1]++
				return ip
			}
		}
		return nil
	}
	if ip := gw(ipam); ip != nil {
		return ip, nil
	}
	rangeSets, _ := ipam["ranges"].([]any)
	for _, rs := range rangeSets {
		rs, _ := rs.([]any)
		for _, r := range rs {
			if r, ok := r.(map[string]any); ok {
				if ip := gw(r); ip != nil {
					return ip, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("network %s: no subnet in its host-local IPAM", n.name)
}
