package networking

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func TestPlanDefaultMasqueradesWithASharedRule(t *testing.T) {
	cfg := netdConfig(t, nil)
	nets, err := cfg.plan([]Request{{Name: NetDefault}}, []PortForward{{HostPort: 80, PodPort: 8080, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	d := nets[0]
	ptp := d.plugins()[0]
	if ptp["ipMasq"] != false || ptp["ipMasqBackend"] != nil {
		t.Errorf("the built-in default's ptp masquerades per pod: %v", ptp)
	}
	// It still counts as the masquerading network for the ports.
	if !d.ipMasq() || len(d.ports) != 1 || d.plugins()[len(d.plugins())-1]["type"] != "portmap" {
		t.Errorf("default: ipMasq %v, ports %v, plugins %v", d.ipMasq(), d.ports, d.plugins())
	}
	rules := d.masqRules("iptables")
	if len(rules) != 1 || rules[0].subnet.String() != defaultSubnet || rules[0].network != NetDefault || rules[0].backend != "iptables" {
		t.Errorf("shared rules %v, want one for %s", rules, defaultSubnet)
	}

	// A net.d network named default keeps what it asks for.
	cfg = netdConfig(t, map[string]string{"d.conf": `{"cniVersion":"1.0.0","name":"default","type":"ptp","ipMasq":true,"ipam":{"type":"host-local","subnet":"10.30.0.0/24"}}`})
	nets, err = cfg.plan([]Request{{Name: NetDefault}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := nets[0].masqRules("iptables"); r != nil || nets[0].plugins()[0]["ipMasq"] != true {
		t.Errorf("user network default: shared rules %v, plugin %v", r, nets[0].plugins()[0])
	}
	for _, name := range []string{NetDefaultRestricted} {
		nets, err := netdConfig(t, nil).plan([]Request{{Name: name}}, nil)
		if err != nil || nets[0].masqRules("iptables") != nil || nets[0].ipMasq() {
			t.Errorf("%s masquerades: %v", name, err)
		}
	}
}

func TestMasqRuleSpecs(t *testing.T) {
	_, v4, _ := net.ParseCIDR("172.16.28.0/24")
	r := masqRule{network: "default", subnet: v4, backend: "iptables"}
	want := `-w -t nat -C POSTROUTING -s 172.16.28.0/24 ! -d 172.16.28.0/24 -m iprange ! --dst-range 224.0.0.0-239.255.255.255 -m comment --comment rkt: masquerade for network default -j MASQUERADE`
	if got := strings.Join(r.iptablesArgs("-C"), " "); got != want || r.iptablesCmd() != "iptables" {
		t.Errorf("iptables %s", got)
	}
	script := r.nftScript()
	for _, s := range []string{"add table inet rkt\n", "type nat hook postrouting priority srcnat;",
		`add rule inet rkt postrouting ip saddr 172.16.28.0/24 ip daddr != 172.16.28.0/24 ip daddr != 224.0.0.0/4 masquerade comment "rkt: masquerade for network default 172.16.28.0/24"`} {
		if !strings.Contains(script, s) {
			t.Errorf("nft script lacks %q:\n%s", s, script)
		}
	}
	_, v6, _ := net.ParseCIDR("fd00:28::/64")
	r6 := masqRule{network: "n", subnet: v6, backend: "iptables"}
	if args := strings.Join(r6.iptablesArgs("-A"), " "); r6.iptablesCmd() != "ip6tables" || !strings.Contains(args, "-A POSTROUTING -s fd00:28::/64 ! -d fd00:28::/64") || !strings.Contains(args, "ff00::-") {
		t.Errorf("ip6tables %s %s", r6.iptablesCmd(), args)
	}
	if m := r6.nftMatch(); !strings.HasPrefix(m, "ip6 saddr fd00:28::/64 ip6 daddr != fd00:28::/64 ip6 daddr != ff00::/8") {
		t.Errorf("nft v6 %s", m)
	}
}

func TestSetupEnsuresTheSharedRuleBeforeADD(t *testing.T) {
	e := newFakeEnv(t, nil)
	h := e.hooks()
	nis, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: NetDefault}}, nil, e.cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.calls(t), []string{"MASQ 172.16.28.0/24", "ADD eth0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v (the shared rule, then ptp)", got, want)
	}
	if want := []string{"default 172.16.28.0/24 " + firewallBackend()}; !reflect.DeepEqual(e.shared, want) {
		t.Errorf("shared rules %v, want %v", e.shared, want)
	}
	if len(nis) != 1 || nis[0].IP != "172.16.28.2" {
		t.Fatalf("NetInfo %+v", nis)
	}
	// What gc and old pods rely on: the recorded ptp does not masquerade.
	if masq, _ := masquerades(mustConfList(t, nis[0].Config)); masq {
		t.Errorf("recorded configuration masquerades per pod: %s", nis[0].Config)
	}
	// A killed pod's teardown removes no per-pod rule.
	e.netnsGone = true
	if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, h); err != nil {
		t.Fatal(err)
	}
	if len(e.masq) != 0 {
		t.Errorf("per-pod masquerading removed for the built-in default: %v", e.masq)
	}
}

func mustConfList(t *testing.T, b []byte) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTeardownOfPodsRecordedWithPerPodMasquerading(t *testing.T) {
	for _, backend := range []string{"iptables", "nftables", ""} {
		e := newFakeEnv(t, nil)
		if _, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: NetDefault}}, nil, e.cfg, e.hooks()); err != nil {
			t.Fatal(err)
		}
		// What rkt recorded for the default network before it shared one
		// rule.
		nis, err := LoadNetInfo(e.podDir)
		if err != nil {
			t.Fatal(err)
		}
		var conf map[string]any
		json.Unmarshal(nis[0].Config, &conf)
		ptp := conf["plugins"].([]any)[0].(map[string]any)
		ptp["ipMasq"] = true
		if backend != "" {
			ptp["ipMasqBackend"] = backend
		}
		nis[0].Config, _ = json.Marshal(conf)
		if err := writeNetInfo(e.podDir, nis); err != nil {
			t.Fatal(err)
		}
		e.netnsGone = true
		if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks()); err != nil {
			t.Fatal(err)
		}
		want := backend
		if want == "" {
			want = firewallBackend()
		}
		if got := []string{"default eth0 " + fakeUUID + " [172.16.28.2/24] " + want}; !reflect.DeepEqual(e.masq, got) {
			t.Errorf("backend %q: per-pod teardown %v, want %v", backend, e.masq, got)
		}
	}
}

func TestSetupFailsWhenTheSharedRuleCannotBeAdded(t *testing.T) {
	e := newFakeEnv(t, map[string]string{"1.conf": fakeNet("one", "10.99.0.2/24", "")})
	e.sharedErr = errors.New("iptables: injected failure")
	_, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: "one"}, {Name: NetDefault}}, nil, e.cfg, e.hooks())
	if err == nil || !strings.Contains(err.Error(), "network default") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Setup = %v, want the failure of the default network's rule", err)
	}
	// The default network's ADD runs while its rule is made sure of: it
	// is rolled back too, before network one.
	if got, want := e.calls(t), []string{"ADD eth0", "ADD eth1", "DEL eth1", "DEL eth0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v (both networks rolled back)", got, want)
	}
	if _, err := os.Stat(filepath.Join(e.podDir, NetInfoFile)); !os.IsNotExist(err) {
		t.Errorf("net-info.json left: %v", err)
	}
}
