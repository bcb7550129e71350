package networking

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// checkHostRoutes refuses a network whose address range overlaps a
// route or an address the host has for something else: a ptp pod's /32
// would override a host or LAN address there, and a bridge network's
// subnet route would duplicate the host's and leave the pods
// unreachable. What the networks' own pods make is not a conflict: host
// routes and addresses on veths (the ptp pods of this or another
// network), the network's own bridge, and interfaces in rkt's device
// groups. The default route, and any route less specific than a /1, is
// not one either.
func checkHostRoutes(nets []*network) error {
	links := map[int]netlink.Link{}
	link := func(i int) netlink.Link {
		if l, ok := links[i]; ok {
			return l
		}
		l, _ := netlink.LinkByIndex(i)
		links[i] = l
		return l
	}
	ours := func(n *network, idx int, dst *net.IPNet) bool {
		l := link(idx)
		if l == nil {
			// The route's device went away after the routes were
			// listed (a pod's veth being torn down): the route goes
			// with it. A route with no device at all (unreachable,
			// blackhole) still counts.
			return idx != 0
		}
		a := l.Attrs()
		if isRktGroup(a.Group) || (n.bridgeName() != "" && a.Name == n.bridgeName()) {
			return true
		}
		ones, bits := dst.Mask.Size()
		return l.Type() == "veth" && ones == bits
	}
	for _, n := range nets {
		for _, s := range n.subnets() {
			fam := netlink.FAMILY_V4
			if s.IP.To4() == nil {
				fam = netlink.FAMILY_V6
			}
			routes, err := netlink.RouteList(nil, fam)
			if err != nil {
				return fmt.Errorf("network %s: list the host's routes: %w", n.name, err)
			}
			for _, r := range routes {
				if r.Dst == nil || r.Dst.IP.IsLinkLocalUnicast() {
					continue
				}
				if ones, _ := r.Dst.Mask.Size(); ones == 0 || !overlap(r.Dst, s) || ours(n, r.LinkIndex, r.Dst) {
					continue
				}
				dev := "no device"
				if l := link(r.LinkIndex); l != nil {
					dev = "dev " + l.Attrs().Name
				}
				return routeConflict(n, s, fmt.Sprintf("route %s %s", r.Dst, dev))
			}
			addrs, err := netlink.AddrList(nil, fam)
			if err != nil {
				return fmt.Errorf("network %s: list the host's addresses: %w", n.name, err)
			}
			for _, a := range addrs {
				if a.IPNet == nil || !s.Contains(a.IP) || ours(n, a.LinkIndex, a.IPNet) {
					continue
				}
				dev := ""
				if l := link(a.LinkIndex); l != nil {
					dev = " on " + l.Attrs().Name
				}
				return routeConflict(n, s, fmt.Sprintf("address %s%s", a.IPNet, dev))
			}
		}
	}
	return nil
}

func overlap(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

func routeConflict(n *network, s *net.IPNet, what string) error {
	return &netError{
		msg: fmt.Sprintf("network %s (%s): its range %s overlaps the host's %s: its pods would hide those addresses or be unreachable: give the network a subnet the host does not use",
			n.name, n.source(), s, what),
		class: ErrRouteConflict, cause: ErrConfig,
	}
}
