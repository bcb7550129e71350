package networking

import (
	"fmt"
	"strings"
	"testing"
)

// saveOf renders rules as iptables-save prints them (comments quoted,
// as they contain spaces), with or without the jumps.
func saveOf(rules []guardRule, jumps bool) string {
	var b strings.Builder
	for _, table := range []string{"raw", "mangle", "filter"} {
		b.WriteString("*" + table + "\n")
		for _, c := range guardChains {
			if c.table != table {
				continue
			}
			b.WriteString(":" + c.chain + " - [0:0]\n")
			if jumps {
				b.WriteString("-A " + c.from + " -j " + c.chain + "\n")
			}
			for _, r := range rules {
				if r.table == table && r.chain == c.chain {
					b.WriteString("-A " + c.chain + " " + r.match + ` -m comment --comment "` + r.comment + `" -j ` + r.target + "\n")
				}
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

func TestGuardScript(t *testing.T) {
	{
		rules := guardRules()
		full := guardScript(parseGuardState(""), rules)
		for _, c := range guardChains {
			if !strings.Contains(full, ":"+c.chain+" - [0:0]\n") || !strings.Contains(full, "-I "+c.from+" 1 -j "+c.chain+"\n") {
				t.Errorf("from nothing, the script misses chain %s or its jump:\n%s", c.chain, full)
			}
		}
		if n := strings.Count(full, "--comment "); n != len(rules) {
			t.Errorf("%d rules in the script, want %d", n, len(rules))
		}
		if s := guardScript(parseGuardState(saveOf(rules, true)), rules); s != "" {
			t.Errorf("in place, the script is not empty:\n%s", s)
		}
		// Missing jumps only: no chain is rewritten.
		s := guardScript(parseGuardState(saveOf(rules, false)), rules)
		if strings.Contains(s, "-A ") || strings.Count(s, "-I ") != len(guardChains) {
			t.Errorf("with the jumps missing:\n%s", s)
		}
		// A rule changed or gone: that chain only is declared (flushed)
		// and refilled.
		s = guardScript(parseGuardState(saveOf(rules[1:], true)), rules)
		if !strings.Contains(s, "*raw\n:RKT-PREROUTING - [0:0]") || strings.Contains(s, "*mangle") || strings.Contains(s, ":RKT-INPUT") || strings.Contains(s, "-I ") {
			t.Errorf("with the raw rule missing:\n%s", s)
		}
		// A rule of an older rkt, with the same comment: rewritten.
		old := append([]guardRule(nil), rules...)
		last := &old[len(old)-1]
		last.match = strings.TrimSuffix(last.match, " -m conntrack ! --ctstate DNAT")
		s = guardScript(parseGuardState(saveOf(old, true)), rules)
		if !strings.Contains(s, ":RKT-FORWARD - [0:0]") || strings.Contains(s, ":RKT-INPUT") || strings.Contains(s, ":RKT-PREROUTING") || strings.Count(s, "*") != 1 {
			t.Errorf("with a rule changed:\n%s", s)
		}
	}
	// The IPv4 rules drop the loopback from every rkt group, check the
	// source on the built-in ones, and keep default-restricted to its
	// gateway.
	v4 := guardScript(parseGuardState(""), guardRules())
	for _, want := range []string{
		"-d 127.0.0.0/8 -m devgroup --src-group 0x726b7400/0xfffffffc -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT",
		"-m devgroup --src-group 0x726b7402/0xfffffffe -m rpfilter --invert",
		"! -d 172.31.0.1/32 -m devgroup --src-group 0x726b7403",
		"-m devgroup --dst-group 0x726b7403",
		"-m devgroup --src-group 0x726b7402/0xfffffffe -m conntrack --ctstate NEW -m connlimit --connlimit-above 16384 --connlimit-mask 32 --connlimit-saddr",
	} {
		if !strings.Contains(v4, want) {
			t.Errorf("IPv4 script lacks %q:\n%s", want, v4)
		}
	}
}

func TestNetworkGroups(t *testing.T) {
	cfg := Config{}
	nets, err := cfg.plan([]Request{{Name: NetDefault}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := nets[0].group(); g != groupBuiltin {
		t.Errorf("default: group %#x", g)
	}
	nets, err = cfg.plan([]Request{{Name: NetDefaultRestricted}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := nets[0].group(); g != groupRestricted {
		t.Errorf("default-restricted: group %#x", g)
	}
	for _, g := range []uint32{groupNetD, groupBuiltin, groupRestricted} {
		if !isRktGroup(g) {
			t.Errorf("%#x is not one of rkt's groups", g)
		}
	}
	if isRktGroup(0) || isRktGroup(0x726b7404) {
		t.Error("0 or 0x726b7404 taken for rkt's")
	}
	if (&network{name: NetDefault, file: "/etc/rkt/net.d/default.conf"}).group() != groupNetD {
		t.Error("a net.d network replacing default gets the built-in's group")
	}
}

func TestNatHasMasq(t *testing.T) {
	cfg := Config{}
	nets, err := cfg.plan([]Request{{Name: NetDefault}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := nets[0].masqRules("iptables")[0]
	line := "-A POSTROUTING " + strings.Join(r.iptablesArgs("-A")[5:], " ")
	line = strings.Replace(line, "--comment "+r.comment(), "--comment \""+r.comment()+"\"", 1)
	if !natHasMasq("*nat\n"+line+"\nCOMMIT\n", r) {
		t.Errorf("the rule is not seen in\n%s", line)
	}
	if natHasMasq("*filter\n"+line+"\nCOMMIT\n", r) || natHasMasq("*nat\nCOMMIT\n", r) {
		t.Error("seen where it is not")
	}
}

func TestHostDir(t *testing.T) {
	t.Setenv(HostDirEnv, "")
	if got := HostDir(); got != DefaultHostDir {
		t.Errorf("HostDir() = %q, want %q", got, DefaultHostDir)
	}
	t.Setenv(HostDirEnv, "/tmp/x")
	if got := HostDir(); got != "/tmp/x" {
		t.Errorf("with %s set: HostDir() = %q", HostDirEnv, got)
	}
	if got := (&Config{}).hostDir(); got != "/tmp/x" {
		t.Errorf("Config{}.hostDir() = %q", got)
	}
	if got := (&Config{HostDir: "/h"}).hostDir(); got != "/h" {
		t.Errorf("Config{HostDir}.hostDir() = %q", got)
	}
}

// TestGuardNft: the nftables-only script has every rule of the iptables
// one (by comment), and the same groups and addresses.
func TestGuardNft(t *testing.T) {
	nft := guardNft()
	for _, r := range guardRules() {
		if !strings.Contains(nft, fmt.Sprintf("comment %q", r.comment)) {
			t.Errorf("no nftables rule for %q", r.comment)
		}
	}
	for _, want := range []string{
		"meta iifgroup & 0xfffffffc == 0x726b7400 ip daddr 127.0.0.0/8",
		"meta iifgroup & 0xfffffffe == 0x726b7402 fib saddr . iif oif missing drop",
		"ip daddr != 172.31.0.1",
		"ct count over 16384",
	} {
		if !strings.Contains(nft, want) {
			t.Errorf("the nftables script lacks %q:\n%s", want, nft)
		}
	}
}
