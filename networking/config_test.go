package networking

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// netdConfig writes net.d files into a fresh local config directory.
func netdConfig(t *testing.T, files map[string]string) *Config {
	t.Helper()
	dir := t.TempDir()
	netd := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(netd, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Config{LocalConfig: dir, DataDir: filepath.Join(dir, "data")}
}

func names(nets []*network) string {
	var s []string
	for _, n := range nets {
		s = append(s, n.name+"="+n.ifName)
	}
	return strings.Join(s, ",")
}

const (
	confA = `{"cniVersion":"1.0.0","name":"a","type":"ptp","ipMasq":true,"ipam":{"type":"host-local","subnet":"10.10.1.0/24"}}`
	confB = `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.10.2.0/24"}]],"dataDir":"/somewhere"}}]}`
	confC = `{"cniVersion":"1.0.0","name":"c","type":"macvlan","master":"eth0","ipam":{"type":"host-local","subnet":"10.10.3.0/24"}}`
)

func TestPlanNetworks(t *testing.T) {
	cfg := netdConfig(t, map[string]string{"10-a.conf": confA, "20-b.conflist": confB, "30-c.conf": confC, "README": "not a network"})
	for _, c := range []struct {
		net  string
		want string
	}{
		{"default", "default=eth0"},
		{"a", "a=eth0,default-restricted=eth1"},
		{"b,default", "b=eth0,default=eth1"},
		{"default-restricted", "default-restricted=eth0"},
		{"all", "default=eth0,a=eth1,b=eth2,c=eth3"},
		{"all,c:K=V", "default=eth0,a=eth1,b=eth2,c=eth3"},
	} {
		reqs, _, _, err := ParseNetFlag(c.net)
		if err != nil {
			t.Fatal(err)
		}
		nets, err := cfg.plan(reqs, nil)
		if err != nil {
			t.Errorf("--net=%s: %v", c.net, err)
			continue
		}
		if got := names(nets); got != c.want {
			t.Errorf("--net=%s: networks %s, want %s", c.net, got, c.want)
		}
	}
}

func TestPlanFillsIn(t *testing.T) {
	cfg := netdConfig(t, map[string]string{"a.conf": confA, "b.conflist": confB})
	nets, err := cfg.plan([]Request{{Name: "a", Args: [][2]string{{"IP", "10.10.1.7"}}}, {Name: "b"}}, []PortForward{{HostPort: 80, PodPort: 8080, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	a, b, restricted := nets[0], nets[1], nets[2]
	if got := a.hostLocal()["dataDir"]; got != cfg.DataDir {
		t.Errorf("a's host-local dataDir = %v, want %s", got, cfg.DataDir)
	}
	if got := b.hostLocal()["dataDir"]; got != "/somewhere" {
		t.Errorf("b's own dataDir was replaced by %v", got)
	}
	if got := b.plugins()[0]["bridge"]; got != defaultBridge {
		t.Errorf("b's bridge = %v, want %s", got, defaultBridge)
	}
	if a.leaseDir() != filepath.Join(cfg.DataDir, "a") {
		t.Errorf("leaseDir = %s", a.leaseDir())
	}
	// The ports go to the first network that masquerades, with portmap.
	if len(a.ports) != 1 || len(a.plugins()) != 2 || a.plugins()[1]["type"] != "portmap" {
		t.Errorf("a: ports %v, plugins %v; want the port and portmap chained", a.ports, a.plugins())
	}
	if len(b.ports) != 0 || len(b.plugins()) != 1 || len(restricted.plugins()) != 1 {
		t.Errorf("portmap chained on the wrong network: %v / %v", b.plugins(), restricted.plugins())
	}
	if !restricted.auto || a.auto {
		t.Error("default-restricted should be marked as added automatically")
	}
	if len(a.args) != 1 || a.args[0] != [2]string{"IP", "10.10.1.7"} {
		t.Errorf("a's args = %v", a.args)
	}
	// The configuration handed to libcni is valid and complete.
	l, err := a.confList()
	if err != nil || l.Name != "a" || len(l.Plugins) != 2 || l.Plugins[0].Network.Type != "ptp" {
		t.Fatalf("confList = %+v, %v", l, err)
	}
	// The loaded networks themselves are not changed by a plan.
	again, err := cfg.plan([]Request{{Name: "a"}}, nil)
	if err != nil || len(again[0].plugins()) != 1 {
		t.Errorf("a plan changed the next one: %v %v", again[0].plugins(), err)
	}
}

func TestPlanPortTarget(t *testing.T) {
	noMasq := `{"cniVersion":"1.0.0","name":"%s","type":"ptp","ipam":{"type":"host-local","subnet":"%s"}}`
	cfg := netdConfig(t, map[string]string{
		"x.conf": strings.Replace(strings.Replace(noMasq, "%s", "x", 1), "%s", "10.20.1.0/24", 1),
		"y.conf": strings.Replace(strings.Replace(noMasq, "%s", "y", 1), "%s", "10.20.2.0/24", 1),
	})
	ports := []PortForward{{HostPort: 80, PodPort: 80, Protocol: "tcp"}}
	// No network masquerades: the last one asked for (not the automatic
	// default-restricted).
	nets, err := cfg.plan([]Request{{Name: "x"}, {Name: "y"}}, ports)
	if err != nil {
		t.Fatal(err)
	}
	if nets[1].name != "y" || len(nets[1].ports) != 1 || len(nets[0].ports) != 0 || len(nets[2].ports) != 0 {
		t.Errorf("ports went to the wrong network: %s", names(nets))
	}
	// default masquerades: it gets them even when listed last.
	nets, err = cfg.plan([]Request{{Name: "x"}, {Name: "default"}}, ports)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets[1].ports) != 1 || len(nets[0].ports) != 0 {
		t.Errorf("ports should go to default: %s", names(nets))
	}
}

func TestPlanUserDefaultOverrides(t *testing.T) {
	cfg := netdConfig(t, map[string]string{"default.conf": `{"cniVersion":"0.4.0","name":"default","type":"ptp","ipam":{"type":"host-local","subnet":"10.30.0.0/16"}}`})
	nets, err := cfg.plan([]Request{{Name: "default"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 1 || nets[0].file == "" || nets[0].subnets()[0].String() != "10.30.0.0/16" {
		t.Errorf("the user's default network should replace the built-in one: %+v", nets[0])
	}
}

func TestPlanErrors(t *testing.T) {
	for _, c := range []struct {
		files map[string]string
		net   string
		class error
		want  string
	}{
		{nil, "nosuch", ErrNoNetwork, "define it there"},
		{map[string]string{"a.conf": confA, "a2.conf": confA}, "a", ErrConfig, "both named"},
		{map[string]string{"x.conf": `{"name":"x"`}, "default", ErrConfig, "x.conf"},
		{map[string]string{"x.conf": `{"cniVersion":"1.0.0","type":"ptp"}`}, "default", ErrConfig, "no \"name\""},
		{map[string]string{"x.conf": `{"cniVersion":"1.0.0","name":"host","type":"ptp"}`}, "default", ErrConfig, "reserved"},
		{map[string]string{"x.conf": `{"cniVersion":"1.0.0","name":"x"}`}, "x", ErrConfig, "needs a plugin"},
		{map[string]string{"x.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[{"ipam":{}}]}`}, "x", ErrConfig, "no \"type\""},
		// Two networks of one pod with overlapping ranges.
		{map[string]string{"a.conf": confA, "wide.conf": `{"cniVersion":"1.0.0","name":"wide","type":"bridge","ipam":{"type":"host-local","subnet":"10.10.0.0/16"}}`},
			"a,wide", ErrConfig, "overlapping address ranges 10.10.1.0/24 and 10.10.0.0/16"},
		// A user network clashing with the automatic default-restricted.
		{map[string]string{"r.conf": `{"cniVersion":"1.0.0","name":"r","type":"ptp","ipam":{"type":"host-local","subnet":"172.31.5.0/24"}}`},
			"r", ErrConfig, "default-restricted (built-in)"},
	} {
		cfg := netdConfig(t, c.files)
		reqs, _, _, err := ParseNetFlag(c.net)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfg.plan(reqs, nil)
		if err == nil || !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v --net=%s: error %v, want %v with %q", c.files, c.net, err, c.class, c.want)
		}
	}
}

func TestPlanWithoutLocalConfig(t *testing.T) {
	cfg := &Config{}
	nets, err := cfg.plan([]Request{{Name: "default"}}, nil)
	if err != nil || names(nets) != "default=eth0" {
		t.Fatalf("%s %v", names(nets), err)
	}
	if _, err := cfg.plan([]Request{{Name: "mine"}}, nil); !errors.Is(err, ErrNoNetwork) {
		t.Errorf("unknown network without net.d: %v", err)
	}
}
