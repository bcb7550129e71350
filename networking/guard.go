package networking

import (
	"fmt"
	"strings"
)

// The isolation rkt adds to the CNI plugins' (see docs/networking.md,
// "Isolation"). Every host-side interface of a pod (the ptp veth, a
// bridge network's veth and bridge) is put in a network device group of
// rkt's as the pod's networks are set up; one fixed set of firewall
// rules, shared by every pod, matches on those groups:
//
//   - no pod reaches the host's 127.0.0.0/8 (portmap's hairpin SNAT turns
//     route_localnet on for the pod's host interface; replies to
//     connections the host made, and port forwards, are let through), as
//     kube-proxy does for CVE-2020-8558;
//   - on the built-in networks a pod sends from its own address only: a
//     strict reverse-path check (the source must be routed back through
//     the interface it came in on) in the raw table, so a forged packet
//     is dropped before conntrack makes an entry for it; the networks
//     are IPv4-only, and IPv6 is off on their host-side veths (no IPv6
//     from their pods reaches the host or is forwarded);
//     and the connections the host tracks for one such pod are bounded
//     (PodConnLimit, connlimit by source address in the mangle table);
//   - the built-in default-restricted network is host-only: nothing is
//     forwarded from or to its pods (but the connections of its --port
//     forwards, which the host DNATs), and its pods reach the host only
//     at their gateway address, except for replies to connections the
//     host made.
//
// The rules stay when the last pod is gone, like the shared masquerading
// rule; a pod's setup checks them (one iptables-save, under a lock, which
// also shows the shared masquerading rule) and puts them back if they
// are missing or different.

// The device groups of the pods' host-side interfaces. The upper 30 bits
// say "rkt"; bit 1 marks the built-in networks (source check), bit 0 the
// host-only default-restricted.
const (
	groupNetD       uint32 = 0x726b7400 // a net.d network
	groupBuiltin    uint32 = 0x726b7402 // the built-in default
	groupRestricted uint32 = 0x726b7403 // the built-in default-restricted

	groupMaskAny     uint32 = 0xfffffffc
	groupMaskBuiltin uint32 = 0xfffffffe
)

// isRktGroup reports whether a device group is one of rkt's.
func isRktGroup(g uint32) bool { return g&groupMaskAny == groupNetD }

// group returns the device group of the network's host-side interfaces.
func (n *network) group() uint32 {
	switch {
	case n.file == "" && n.name == NetDefaultRestricted:
		return groupRestricted
	case n.file == "":
		return groupBuiltin
	}
	return groupNetD
}

// PodConnLimit bounds the connections (flows: UDP too) the host tracks
// for one pod of the built-in networks, whose source addresses are
// checked: a pod's new connection beyond it, to the host or through it,
// is dropped, so that no pod fills the host-wide conntrack table
// (net.netfilter.nf_conntrack_max) by itself.
const PodConnLimit = 16384

// restrictedGateway is the host's address on default-restricted, the
// only one its pods reach (host-local's gateway: the subnet's first
// address).
const restrictedGateway = "172.31.0.1"

// guardRule is one rule of rkt's chains.
type guardRule struct {
	table, chain string
	// match is the rule for iptables, without its comment and target.
	match  string
	target string
	// comment says what the rule is for.
	comment string
}

// spec is the rule as iptables-save prints it, after "-A CHAIN ". Setup
// compares these to tell whether a chain is as it should be (an
// iptables that prints rules differently only costs a rewrite of the
// chains at each pod's start).
func (r guardRule) spec() string {
	return fmt.Sprintf("%s -m comment --comment %q -j %s", r.match, r.comment, r.target)
}

// guardChains are rkt's chains, by table, and the built-in chain each
// is jumped to from (first).
var guardChains = []struct{ table, chain, from string }{
	{"raw", "RKT-PREROUTING", "PREROUTING"},
	{"mangle", "RKT-PREROUTING", "PREROUTING"},
	{"filter", "RKT-INPUT", "INPUT"},
	{"filter", "RKT-FORWARD", "FORWARD"},
}

func devgroup(dir string, g, mask uint32) string {
	if mask == 0xffffffff {
		return fmt.Sprintf("-m devgroup --%s-group 0x%x", dir, g)
	}
	return fmt.Sprintf("-m devgroup --%s-group 0x%x/0x%x", dir, g, mask)
}

// guardRules returns rkt's rules (IPv4: the built-in networks are
// IPv4-only, and IPv6 is off on their host-side interfaces, see
// markHostIfaces).
func guardRules() []guardRule {
	notNew := "-m conntrack ! --ctstate RELATED,ESTABLISHED"
	rules := []guardRule{{
		table: "raw", chain: "RKT-PREROUTING",
		match:   devgroup("src", groupBuiltin, groupMaskBuiltin) + " -m rpfilter --invert",
		target:  "DROP",
		comment: "rkt: a pod sends from its own address",
	}}
	rules = append(rules, guardRule{
		table: "mangle", chain: "RKT-PREROUTING",
		match: fmt.Sprintf("%s -m conntrack --ctstate NEW -m connlimit --connlimit-above %d --connlimit-mask 32 --connlimit-saddr",
			devgroup("src", groupBuiltin, groupMaskBuiltin), PodConnLimit),
		target:  "DROP",
		comment: "rkt: connections tracked per pod",
	})
	return append(rules,
		guardRule{
			table: "filter", chain: "RKT-INPUT",
			match:   "-d 127.0.0.0/8 " + devgroup("src", groupNetD, groupMaskAny) + " " + notNew + ",DNAT",
			target:  "DROP",
			comment: "rkt: pods do not reach the host loopback",
		},
		guardRule{
			table: "filter", chain: "RKT-INPUT",
			match:   "! -d " + restrictedGateway + "/32 " + devgroup("src", groupRestricted, 0xffffffff) + " " + notNew,
			target:  "DROP",
			comment: "rkt: default-restricted reaches its gateway only",
		},
		guardRule{
			table: "filter", chain: "RKT-FORWARD",
			match:   devgroup("src", groupRestricted, 0xffffffff) + " -m conntrack ! --ctstate DNAT",
			target:  "DROP",
			comment: "rkt: nothing is forwarded from default-restricted",
		},
		guardRule{
			table: "filter", chain: "RKT-FORWARD",
			match:   devgroup("dst", groupRestricted, 0xffffffff) + " -m conntrack ! --ctstate DNAT",
			target:  "DROP",
			comment: "rkt: nothing is forwarded to default-restricted",
		},
	)
}

// guardState is what iptables-save shows of rkt's chains: each chain's
// rules (their spec), in order, and the built-in chains that jump to
// them.
type guardState struct {
	rules map[string][]string // "table/chain"
	jumps map[string]bool     // "table/from"
}

// parseGuardState reads iptables-save output.
func parseGuardState(save string) guardState {
	st := guardState{rules: map[string][]string{}, jumps: map[string]bool{}}
	table := ""
	for _, l := range strings.Split(save, "\n") {
		l = strings.TrimSpace(l)
		if t, ok := strings.CutPrefix(l, "*"); ok {
			table = t
			continue
		}
		for _, c := range guardChains {
			if c.table != table {
				continue
			}
			if l == ":"+c.chain || strings.HasPrefix(l, ":"+c.chain+" ") {
				if st.rules[table+"/"+c.chain] == nil {
					st.rules[table+"/"+c.chain] = []string{}
				}
			}
			if rest, ok := strings.CutPrefix(l, "-A "+c.chain+" "); ok {
				st.rules[table+"/"+c.chain] = append(st.rules[table+"/"+c.chain], strings.Join(strings.Fields(rest), " "))
			}
			if l == "-A "+c.from+" -j "+c.chain {
				st.jumps[table+"/"+c.from] = true
			}
		}
	}
	return st
}

// guardScript returns an iptables-restore --noflush script that puts
// back what differs from rules in the state st, "" if nothing does.
// Declaring a chain flushes it; the jumps are inserted first in their
// chains only when missing.
func guardScript(st guardState, rules []guardRule) string {
	var b strings.Builder
	for _, table := range []string{"raw", "mangle", "filter"} {
		var body strings.Builder
		for _, c := range guardChains {
			if c.table != table {
				continue
			}
			var want []string
			var lines []string
			for _, r := range rules {
				if r.table == table && r.chain == c.chain {
					want = append(want, r.spec())
					lines = append(lines, "-A "+c.chain+" "+r.spec()+"\n")
				}
			}
			have, exists := st.rules[table+"/"+c.chain]
			if !exists || strings.Join(have, "\x00") != strings.Join(want, "\x00") {
				fmt.Fprintf(&body, ":%s - [0:0]\n", c.chain)
				body.WriteString(strings.Join(lines, ""))
			}
			if !st.jumps[table+"/"+c.from] {
				fmt.Fprintf(&body, "-I %s 1 -j %s\n", c.from, c.chain)
			}
		}
		if body.Len() > 0 {
			fmt.Fprintf(&b, "*%s\n%sCOMMIT\n", table, body.String())
		}
	}
	return b.String()
}

// guardNft is the same isolation for hosts with nftables only: rkt's
// table inet rkt, chains guard-prerouting, guard-input and
// guard-forward, replaced as a whole.
func guardNft() string {
	anyGroup := fmt.Sprintf("meta iifgroup & 0x%x == 0x%x", groupMaskAny, groupNetD)
	builtin := fmt.Sprintf("meta iifgroup & 0x%x == 0x%x", groupMaskBuiltin, groupBuiltin)
	restricted := fmt.Sprintf("0x%x", groupRestricted)
	return fmt.Sprintf(`add table inet %[1]s
add chain inet %[1]s guard-prerouting { type filter hook prerouting priority raw; policy accept; }
add chain inet %[1]s guard-connlimit { type filter hook prerouting priority mangle; policy accept; }
add chain inet %[1]s guard-input { type filter hook input priority filter - 1; policy accept; }
add chain inet %[1]s guard-forward { type filter hook forward priority filter - 1; policy accept; }
add set inet %[1]s podconns4 { type ipv4_addr; size 65535; flags dynamic; }
flush chain inet %[1]s guard-prerouting
flush chain inet %[1]s guard-connlimit
flush chain inet %[1]s guard-input
flush chain inet %[1]s guard-forward
add rule inet %[1]s guard-prerouting %[3]s fib saddr . iif oif missing drop comment "rkt: a pod sends from its own address"
add rule inet %[1]s guard-connlimit %[3]s ct state new add @podconns4 { ip saddr ct count over %[6]d } drop comment "rkt: connections tracked per pod"
add rule inet %[1]s guard-input %[2]s ip daddr 127.0.0.0/8 ct state & (established | related) == 0 ct status & dnat == 0 drop comment "rkt: pods do not reach the host loopback"
add rule inet %[1]s guard-input meta iifgroup %[4]s ip daddr != %[5]s ct state & (established | related) == 0 drop comment "rkt: default-restricted reaches its gateway only"
add rule inet %[1]s guard-forward meta iifgroup %[4]s ct status & dnat == 0 drop comment "rkt: nothing is forwarded from default-restricted"
add rule inet %[1]s guard-forward meta oifgroup %[4]s ct status & dnat == 0 drop comment "rkt: nothing is forwarded to default-restricted"
`, masqTable, anyGroup, builtin, restricted, restrictedGateway, PodConnLimit)
}

// natHasMasq reports whether iptables-save output shows the shared
// masquerading rule r in the nat table (its subnet, comment and target
// on one POSTROUTING line). When it does not, the rule is checked and
// added the slow way (ensureMasq).
func natHasMasq(save string, r masqRule) bool {
	table := ""
	for _, l := range strings.Split(save, "\n") {
		if t, ok := strings.CutPrefix(l, "*"); ok {
			table = t
			continue
		}
		if table == "nat" && strings.HasPrefix(l, "-A POSTROUTING -s "+r.subnet.String()+" ") &&
			strings.Contains(l, fmt.Sprintf("--comment %q", r.comment())) && strings.HasSuffix(l, "-j MASQUERADE") {
			return true
		}
	}
	return false
}
