package networking

import (
	"fmt"
	"net"
	"strings"
)

// The built-in default network's masquerading. The stock ptp plugin's
// ipMasq makes a chain and three rules per pod (nine iptables runs at ADD,
// as many again at DEL, in the iptables and the nftables backends both),
// which was most of what --net=default cost. rkt instead keeps one rule
// per subnet of the network, with the same effect for every pod on it:
// traffic from the subnet to anywhere outside it, multicast excepted,
// leaves with the host's address. Setup checks the rule with one run and
// adds it when missing; nothing removes it (like the chains portmap
// shares between pods, it stays for the next pod).

// masqTable and masqChain hold the rules when the backend is nftables.
const (
	masqTable = "rkt"
	masqChain = "postrouting"
)

// masqLockFile, in Config.DataDir, serializes the check and the addition
// of the shared rules between concurrent pods. '+' cannot appear in a
// network name, so it never clashes with host-local's lease directories.
const masqLockFile = "+masquerade.lock"

// masqRule is the shared masquerading rule of one subnet of a network.
type masqRule struct {
	network string
	subnet  *net.IPNet
	// backend is "iptables" or "nftables", as firewallBackend says.
	backend string
}

// masqRules returns the shared rules of a network rkt masquerades itself.
func (n *network) masqRules(backend string) []masqRule {
	if !n.sharedMasq {
		return nil
	}
	var out []masqRule
	for _, s := range n.subnets() {
		out = append(out, masqRule{network: n.name, subnet: s, backend: backend})
	}
	return out
}

func (r masqRule) v6() bool { return r.subnet.IP.To4() == nil }

func (r masqRule) comment() string {
	return "rkt: masquerade for network " + r.network
}

func (r masqRule) String() string {
	return fmt.Sprintf("%s masquerading of %s for network %s", r.backend, r.subnet, r.network)
}

// iptablesCmd is the iptables binary of the rule's address family.
func (r masqRule) iptablesCmd() string {
	if r.v6() {
		return "ip6tables"
	}
	return "iptables"
}

// iptablesArgs returns the rule for `iptables -t nat` with the given
// operation (-C, -A or -D). The plugins' per-pod rules skip multicast
// destinations; one rule cannot take -d twice, so iprange does it.
func (r masqRule) iptablesArgs(op string) []string {
	multicast := "224.0.0.0-239.255.255.255"
	if r.v6() {
		multicast = "ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	}
	s := r.subnet.String()
	return []string{"-w", "-t", "nat", op, "POSTROUTING", "-s", s, "!", "-d", s,
		"-m", "iprange", "!", "--dst-range", multicast,
		"-m", "comment", "--comment", r.comment(), "-j", "MASQUERADE"}
}

// nftMatch is the rule as nft lists it, without its comment.
func (r masqRule) nftMatch() string {
	fam, multicast := "ip", "224.0.0.0/4"
	if r.v6() {
		fam, multicast = "ip6", "ff00::/8"
	}
	s := r.subnet.String()
	return fmt.Sprintf("%s saddr %s %s daddr != %s %s daddr != %s masquerade", fam, s, fam, s, fam, multicast)
}

// nftComment is the rule's comment as nft writes it.
func (r masqRule) nftComment() string {
	return fmt.Sprintf("comment %q", strings.ReplaceAll(r.comment()+" "+r.subnet.String(), `"`, ""))
}

// nftScript adds the rule (and its table and chain when missing) with
// `nft -f -`.
func (r masqRule) nftScript() string {
	return fmt.Sprintf("add table inet %[1]s\n"+
		"add chain inet %[1]s %[2]s { type nat hook postrouting priority srcnat; policy accept; }\n"+
		"add rule inet %[1]s %[2]s %[3]s %[4]s\n", masqTable, masqChain, r.nftMatch(), r.nftComment())
}

// masqBackend returns the backend a recorded network configuration's
// per-pod masquerading used: the one it named, else the plugins'
// default (iptables when installed).
func masqBackend(named string) string {
	if named != "" {
		return named
	}
	return firewallBackend()
}
