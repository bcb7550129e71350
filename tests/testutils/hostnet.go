package testutils

import (
	"os"
	"os/exec"
	"strings"
	"time"
)

// HostNet is the host's network state that CNI networks share between
// pods and leave behind when the last pod is gone: IP forwarding (ptp and
// bridge switch it on), portmap's CNI-HOSTPORT-* chains, the ipMasq
// nftables table of the plugins, rkt's shared masquerading rules (in the
// nat table with iptables, in rkt's own table with nftables), and the
// iptables nat table itself. Tests snapshot it before they set networks up
// and restore it afterwards, so that they leave the host as found.
//
// rkt's isolation rules (networking/guard.go: the chains RKT-PREROUTING
// in raw and mangle, RKT-INPUT and RKT-FORWARD in filter, and the
// jumps to them) are part of it: Restore removes them when the snapshot
// did not have them and no interface is in one of rkt's device groups
// any more (no pod of rkt's uses them).
type HostNet struct {
	ipForward                                                        string
	natTable, hostportChains, cniMasqTable, rktMasqTable, sharedMasq bool
	guard                                                            map[string]bool
}

// guardChains are rkt's isolation chains: family command, table, chain,
// and the built-in chain that jumps to it (networking.guardChains).
var guardChains = [][4]string{
	{"iptables", "raw", "RKT-PREROUTING", "PREROUTING"},
	{"iptables", "mangle", "RKT-PREROUTING", "PREROUTING"},
	{"iptables", "filter", "RKT-INPUT", "INPUT"},
	{"iptables", "filter", "RKT-FORWARD", "FORWARD"},
}

// rktGroupsInUse reports whether an interface is in one of rkt's device
// groups (0x726b7400-0x726b7403, networking.groupNetD...).
func rktGroupsInUse() bool {
	out, err := exec.Command("ip", "-d", "-o", "link", "show").Output()
	if err != nil {
		return true // cannot tell: leave the rules
	}
	f := strings.Fields(string(out))
	for j := 0; j+1 < len(f); j++ {
		if f[j] == "group" && strings.HasPrefix(f[j+1], "0x726b740") {
			return true
		}
	}
	return false
}

// The names networking and the plugins give to what they share.
const (
	sharedMasqComment = "rkt: masquerade for network" // networking/masq.go
	rktMasqTable      = "rkt"                         // networking.masqTable
	cniMasqTable      = "cni_plugins_masquerade"      // the plugins' ipMasq with nftables
)

// SnapshotHostNet records the host's shared network state.
func SnapshotHostNet() HostNet {
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return HostNet{
		ipForward:      strings.TrimSpace(string(fwd)),
		natTable:       exec.Command("nft", "list", "table", "ip", "nat").Run() == nil,
		hostportChains: exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Run() == nil,
		cniMasqTable:   exec.Command("nft", "list", "table", "inet", cniMasqTable).Run() == nil,
		rktMasqTable:   exec.Command("nft", "list", "table", "inet", rktMasqTable).Run() == nil,
		sharedMasq:     len(sharedMasqRules()) > 0,
		guard:          guardState(),
	}
}

// guardState says which of rkt's isolation chains exist.
func guardState() map[string]bool {
	m := map[string]bool{}
	for _, c := range guardChains {
		m[c[0]+"/"+c[1]+"/"+c[2]] = exec.Command(c[0], "-w", "-t", c[1], "-S", c[2]).Run() == nil
	}
	return m
}

// sharedMasqRules returns rkt's shared masquerading rules in the nat
// table, in `iptables -S` form.
func sharedMasqRules() []string {
	out, err := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		return nil
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") && strings.Contains(l, sharedMasqComment) {
			rules = append(rules, l)
		}
	}
	return rules
}

// Restore removes what the snapshot did not have, where nothing uses it
// any more (other pods may run meanwhile: chains with rules stay), and
// switches IP forwarding back off if it was.
func (h HostNet) Restore() {
	run := func(args ...string) { exec.Command(args[0], args[1:]...).Run() }
	if !h.hostportChains {
		if out, err := exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output(); err == nil &&
			strings.TrimSpace(string(out)) == "-N CNI-HOSTPORT-DNAT" {
			run("iptables", "-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")
			run("iptables", "-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")
			run("iptables", "-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ")
			for _, c := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
				run("iptables", "-t", "nat", "-F", c)
				run("iptables", "-t", "nat", "-X", c)
			}
		}
	}
	if !h.cniMasqTable {
		if out, err := exec.Command("nft", "list", "chain", "inet", cniMasqTable, "masq_checks").Output(); err == nil &&
			!strings.Contains(string(out), "masquerade comment") {
			run("nft", "delete", "table", "inet", cniMasqTable)
		}
	}
	if !h.sharedMasq {
		// iptables -S prints rules quoted for a shell: delete them as printed.
		for _, r := range sharedMasqRules() {
			run("sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(r, "-A "))
		}
	}
	// The kernel removes a dead pod's veths asynchronously.
	inUse := rktGroupsInUse()
	for deadline := time.Now().Add(3 * time.Second); inUse && time.Now().Before(deadline); inUse = rktGroupsInUse() {
		time.Sleep(50 * time.Millisecond)
	}
	if !inUse {
		for _, c := range guardChains {
			if h.guard[c[0]+"/"+c[1]+"/"+c[2]] {
				continue
			}
			run(c[0], "-w", "-t", c[1], "-D", c[3], "-j", c[2])
			run(c[0], "-w", "-t", c[1], "-F", c[2])
			run(c[0], "-w", "-t", c[1], "-X", c[2])
		}
	}
	if !h.rktMasqTable {
		run("nft", "delete", "table", "inet", rktMasqTable)
	}
	// Last: the table is empty only once the rules above are gone.
	if !h.natTable {
		if out, err := exec.Command("iptables", "-t", "nat", "-S").Output(); err == nil && !strings.Contains(string(out), "-A ") && !strings.Contains(string(out), "-N ") {
			run("nft", "delete", "table", "ip", "nat")
		}
	}
	if h.ipForward == "0" {
		os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644)
	}
}
