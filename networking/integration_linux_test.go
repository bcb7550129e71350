package networking

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/utils"
)

// Root tests with the real plugins. Each uses its own lease directory and
// subnet (172.16.28.0/24 only in TestDefaultNetwork), and contacts only
// 127.0.0.1, its pods' addresses and the host's own address on their
// networks.

// freePort returns a TCP port nothing listens on now.
func freePort(t testing.TB) uint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint(l.Addr().(*net.TCPAddr).Port)
}

func mustGet(t testing.TB, url, want string) {
	t.Helper()
	got, err := httpGet(url)
	if err != nil || got != want {
		t.Errorf("GET %s from the host = %q, %v; want %q", url, got, err, want)
	}
}

// noTraceOf checks that no firewall rule and no lease mentions the pod.
func noTraceOf(t testing.TB, p *testPod, ip string, dataDir string) {
	t.Helper()
	for _, l := range strings.Split(firewallState(t), "\n") {
		if strings.Contains(l, p.uuid) || ip != "" && strings.Contains(l, ip+" ") || ip != "" && strings.Contains(l, ip+"/") {
			t.Errorf("firewall rule left for pod %s (%s): %s", p.uuid, ip, l)
		}
	}
	if ls := leases(t, dataDir); len(ls) > 0 {
		t.Errorf("IPAM leases left: %v", ls)
	}
}

func TestDefaultNetwork(t *testing.T) {
	cfg := testConfig(t, needRoot(t), nil)
	hostPort := freePort(t)
	a := startPod(t, "a")
	nis, err := setupPod(t, a, cfg, []Request{{Name: NetDefault}}, []PortForward{{HostPort: hostPort, PodPort: podPort, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	ni := nis[0]
	_, defNet, _ := net.ParseCIDR(defaultSubnet)
	if len(nis) != 1 || ni.Name != NetDefault || ni.IfName != "eth0" || !defNet.Contains(net.ParseIP(ni.IP)) ||
		ni.Gateway != "172.16.28.1" || ni.Mask != "255.255.255.0" || len(ni.Ports) != 1 {
		t.Fatalf("NetInfo = %+v", nis)
	}
	if out, err := a.in(t, "ip", "-4", "route", "show", "default"); err != nil || !strings.Contains(out, "via 172.16.28.1 dev eth0") {
		t.Errorf("default route in the pod: %q %v", out, err)
	}
	if out, err := a.in(t, "ip", "-4", "addr", "show", "lo"); err != nil || !strings.Contains(out, "127.0.0.1") || !strings.Contains(out, "UP") {
		t.Errorf("lo in the pod: %q %v", out, err)
	}
	// One shared masquerading rule for the subnet, none for the pod.
	shared := masqRule{network: NetDefault, subnet: defNet, backend: firewallBackend()}
	if got := countMasqRule(t, shared); got != 1 {
		t.Errorf("the default network's shared masquerading rule is there %d times, want once", got)
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(out), "-s "+ni.IP+"/32 ") || strings.Contains(string(out), utils.FormatChainName(NetDefault, a.uuid)) {
		t.Errorf("a per-pod masquerading rule for %s:\n%s", ni.IP, out)
	}
	// The pod from the host, by its address and by the forwarded port on
	// 127.0.0.1 (OUTPUT chain, route_localnet).
	mustGet(t, fmt.Sprintf("http://%s:%d/", ni.IP, podPort), "pod a")
	mustGet(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort), "pod a")

	// A second pod on the network reaches the first by its address, and by
	// the host port on the host's address (PREROUTING, as from another
	// host).
	b := startPod(t, "b")
	nisB, err := setupPod(t, b, cfg, []Request{{Name: NetDefault}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nisB[0].IP == ni.IP {
		t.Fatalf("both pods got %s", ni.IP)
	}
	if out, err := b.wget(t, fmt.Sprintf("http://%s:%d/", ni.IP, podPort)); err != nil || out != "pod a" {
		t.Errorf("pod b to pod a: %q %v", out, err)
	}
	if out, err := b.wget(t, fmt.Sprintf("http://%s:%d/", nisB[0].Gateway, hostPort)); err != nil || out != "pod a" {
		t.Errorf("pod b to the host's port %d: %q %v", hostPort, out, err)
	}
	// The pod itself through its own forwarded port (hairpin).
	if out, err := a.wget(t, fmt.Sprintf("http://%s:%d/", ni.Gateway, hostPort)); err != nil || out != "pod a" {
		t.Errorf("pod a to itself through the host port: %q %v", out, err)
	}

	// rkt status reads this.
	if saved, err := LoadNetInfo(a.podDir); err != nil || saved[0].IP != ni.IP {
		t.Errorf("LoadNetInfo = %+v, %v", saved, err)
	}

	veths := append(hostVeths(nis), hostVeths(nisB)...)
	for _, p := range []*testPod{a, b} {
		p.kill()
		if err := Teardown(context.Background(), p.uuid, p.podDir, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range veths {
		if !linkGone(v) {
			t.Errorf("veth %s left", v)
		}
	}
	noTraceOf(t, a, ni.IP, cfg.DataDir)
	noTraceOf(t, b, nisB[0].IP, cfg.DataDir)
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err == nil {
		t.Error("the forwarded port still answers after Teardown")
	}
}

const (
	bridgeName = "rkttest0"
	confBridge = `{"cniVersion":"1.0.0","name":"tbr","type":"bridge","bridge":"` + bridgeName + `","isGateway":true,
		"ipam":{"type":"host-local","subnet":"10.222.1.0/24"}}`
	confPtp = `{"cniVersion":"1.0.0","name":"tptp","plugins":[{"type":"ptp","ipMasq":false,
		"ipam":{"type":"host-local","subnet":"10.222.2.0/24"}}]}`
)

func TestCustomBridgeTwoPods(t *testing.T) {
	cfg := testConfig(t, needRoot(t), map[string]string{"10-tbr.conf": confBridge})
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridgeName).Run() })
	pods := []*testPod{startPod(t, "a"), startPod(t, "b")}
	var ips []string
	for _, p := range pods {
		nis, err := setupPod(t, p, cfg, []Request{{Name: "tbr"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// default-restricted comes along, as the pod is not on default.
		if len(nis) != 2 || nis[0].Name != "tbr" || nis[1].Name != NetDefaultRestricted || !nis[1].Auto || nis[1].IfName != "eth1" ||
			!strings.HasPrefix(nis[0].IP, "10.222.1.") || !strings.HasPrefix(nis[1].IP, "172.31.") {
			t.Fatalf("NetInfo = %+v", nis)
		}
		ips = append(ips, nis[0].IP)
	}
	if !linkExists(bridgeName) {
		t.Errorf("bridge %s not created", bridgeName)
	}
	for i, p := range pods {
		other := ips[1-i]
		if out, err := p.wget(t, fmt.Sprintf("http://%s:%d/", other, podPort)); err != nil || out != fmt.Sprintf("pod %c", 'a'+1-i) {
			t.Errorf("pod %d to %s: %q %v", i, other, out, err)
		}
		if out, err := p.in(t, "ip", "-4", "route", "show", "default"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("a bridge network without routes and default-restricted give no default route: %q %v", out, err)
		}
	}
	for _, p := range pods {
		p.kill()
		if err := Teardown(context.Background(), p.uuid, p.podDir, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if ls := leases(t, cfg.DataDir); len(ls) > 0 {
		t.Errorf("leases left: %v", ls)
	}
}

func TestDefaultRestricted(t *testing.T) {
	cfg := testConfig(t, needRoot(t), nil)
	p := startPod(t, "r")
	nis, err := setupPod(t, p, cfg, []Request{{Name: NetDefaultRestricted}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nis) != 1 || !strings.HasPrefix(nis[0].IP, "172.31.") || nis[0].Auto {
		t.Fatalf("NetInfo = %+v", nis)
	}
	if out, err := p.in(t, "ip", "-4", "route", "show", "default"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("default-restricted must give no default route: %q %v", out, err)
	}
	if out, err := p.in(t, "ip", "-4", "route", "show", defaultRestrictedSubnet); err != nil || !strings.Contains(out, "via "+nis[0].Gateway) {
		t.Errorf("no route to the host's side of default-restricted: %q %v", out, err)
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(out), p.uuid) {
		t.Error("default-restricted must not masquerade")
	}
	// Host-only: the host reaches the pod.
	mustGet(t, fmt.Sprintf("http://%s:%d/", nis[0].IP, podPort), "pod r")
}

func TestCustomPtpIPOverride(t *testing.T) {
	cfg := testConfig(t, needRoot(t), map[string]string{"tptp.conflist": confPtp})
	a := startPod(t, "a")
	nis, err := setupPod(t, a, cfg, []Request{{Name: "tptp", Args: [][2]string{{"IP", "10.222.2.50"}}}, {Name: NetDefaultRestricted}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nis[0].IP != "10.222.2.50" || !reflect.DeepEqual(nis[0].Args, [][2]string{{"IP", "10.222.2.50"}}) {
		t.Fatalf("NetInfo = %+v", nis[0])
	}
	if out, err := a.in(t, "ip", "-4", "addr", "show", "eth0"); err != nil || !strings.Contains(out, "10.222.2.50/24") {
		t.Errorf("eth0 in the pod: %q %v", out, err)
	}
	mustGet(t, fmt.Sprintf("http://10.222.2.50:%d/", podPort), "pod a")

	linksBefore := links(t)
	b := startPod(t, "b")
	_, err = setupPod(t, b, cfg, []Request{{Name: "tptp", Args: [][2]string{{"IP", "10.222.2.50"}}}}, nil)
	if !errors.Is(err, ErrAddressUnavailable) || !strings.Contains(err.Error(), "used by pod "+a.uuid) {
		t.Errorf("taken address: %v", err)
	}
	_, err = setupPod(t, b, cfg, []Request{{Name: "tptp", Args: [][2]string{{"IP", "10.222.3.5"}}}}, nil)
	if !errors.Is(err, ErrAddressUnavailable) || !strings.Contains(err.Error(), "outside the network's range 10.222.2.0/24") {
		t.Errorf("address outside the range: %v", err)
	}
	if got := links(t); !reflect.DeepEqual(got, linksBefore) {
		t.Errorf("failed Setups left interfaces: %s", diffLines(strings.Join(linksBefore, "\n"), strings.Join(got, "\n")))
	}
	if _, err := os.Stat(filepath.Join(b.podDir, NetInfoFile)); !os.IsNotExist(err) {
		t.Errorf("net-info.json after a failed Setup: %v", err)
	}
	if ls := leases(t, cfg.DataDir); len(ls) != 2 {
		t.Errorf("leases %v: want only pod a's two", ls)
	}
}

func TestExhaustedRange(t *testing.T) {
	// A /30: one address besides the gateway.
	cfg := testConfig(t, needRoot(t), map[string]string{"tiny.conf": `{"cniVersion":"1.0.0","name":"tiny","type":"ptp",
		"ipam":{"type":"host-local","subnet":"10.222.4.0/30"}}`})
	a := startPod(t, "a")
	if _, err := setupPod(t, a, cfg, []Request{{Name: "tiny"}}, nil); err != nil {
		t.Fatal(err)
	}
	linksBefore, fwBefore := links(t), firewallState(t)
	b := startPod(t, "b")
	_, err := setupPod(t, b, cfg, []Request{{Name: "tiny"}}, nil)
	if !errors.Is(err, ErrAddressExhausted) || !strings.Contains(err.Error(), "network tiny") ||
		!strings.Contains(err.Error(), "no free address in 10.222.4.0/30 (1 pods use it") || !strings.Contains(err.Error(), "rkt gc") {
		t.Fatalf("exhausted range: %v", err)
	}
	t.Logf("the error: %v", err)
	if got := links(t); !reflect.DeepEqual(got, linksBefore) {
		t.Errorf("failed Setup left interfaces: %s", diffLines(strings.Join(linksBefore, "\n"), strings.Join(got, "\n")))
	}
	if fw := firewallState(t); fw != fwBefore {
		t.Errorf("failed Setup changed the firewall:\n%s", diffLines(fwBefore, fw))
	}
	// Overlapping ranges in one pod fail before any plugin runs.
	cfg2 := testConfig(t, pluginsDir, map[string]string{"tptp.conflist": confPtp,
		"wide.conf": `{"cniVersion":"1.0.0","name":"wide","type":"ptp","ipam":{"type":"host-local","subnet":"10.222.0.0/16"}}`})
	if _, err := setupPod(t, b, cfg2, []Request{{Name: "tptp"}, {Name: "wide"}}, nil); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "overlapping") {
		t.Errorf("overlapping ranges: %v", err)
	}
}

func TestRollbackWithRealPlugins(t *testing.T) {
	plugins := needRoot(t)
	cfg := testConfig(t, plugins, map[string]string{
		"10-good.conf": `{"cniVersion":"1.0.0","name":"good","type":"ptp","ipMasq":true,
			"ipam":{"type":"host-local","subnet":"10.222.5.0/24","routes":[{"dst":"0.0.0.0/0"}]}}`,
		"20-bad.conf": `{"cniVersion":"1.0.0","name":"bad","type":"fakecni","failAdd":true}`,
	})
	fake, err := os.ReadFile("testdata/fakecni")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.NetDir(), "fakecni"), fake, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKECNI_LOG", filepath.Join(t.TempDir(), "log"))
	ports := []PortForward{{HostPort: freePort(t), PodPort: podPort, Protocol: "tcp"}}
	// Once through successfully, so that the chains portmap shares
	// between pods exist before the snapshot.
	warm := startPod(t, "warm")
	if _, err := setupPod(t, warm, cfg, []Request{{Name: "good"}}, ports); err != nil {
		t.Fatal(err)
	}
	warm.kill()
	if err := Teardown(context.Background(), warm.uuid, warm.podDir, cfg); err != nil {
		t.Fatal(err)
	}

	fwBefore, linksBefore := firewallState(t), links(t)
	p := startPod(t, "p")
	_, err = setupPod(t, p, cfg, []Request{{Name: "good"}, {Name: "bad"}}, ports)
	if err == nil || !strings.Contains(err.Error(), "network bad") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Setup = %v, want the injected failure of network bad", err)
	}
	if fw := firewallState(t); fw != fwBefore {
		t.Errorf("rules left after the rollback:\n%s", diffLines(fwBefore, fw))
	}
	if got := links(t); !reflect.DeepEqual(got, linksBefore) {
		t.Errorf("interfaces left after the rollback: %s", diffLines(strings.Join(linksBefore, "\n"), strings.Join(got, "\n")))
	}
	if ls := leases(t, cfg.DataDir); len(ls) > 0 {
		t.Errorf("leases left after the rollback: %v", ls)
	}
	if out, err := p.in(t, "ip", "-o", "link"); err != nil || strings.Contains(out, "eth0") {
		t.Errorf("the pod still has eth0: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(p.podDir, NetInfoFile)); !os.IsNotExist(err) {
		t.Errorf("net-info.json after a rollback: %v", err)
	}
}

// TestKillCycles runs pods with a masquerading network and forwarded
// ports, SIGKILLs them, and tears their networks down afterwards (the
// namespace is gone by then), two pods at a time: nothing may be left.
func TestKillCycles(t *testing.T) {
	plugins := needRoot(t)
	const workers = 2
	cycles := 50
	if testing.Short() {
		cycles = 6
	}
	cfg := testConfig(t, plugins, map[string]string{"cyc.conf": `{"cniVersion":"1.0.0","name":"cyc","type":"ptp","ipMasq":true,
		"ipam":{"type":"host-local","subnet":"10.222.6.0/24","routes":[{"dst":"0.0.0.0/0"}]}}`})
	cycle := func(ports []PortForward) ([]string, error) {
		p, err := startPodE(t, "k")
		if err != nil {
			return nil, err
		}
		nis, err := Setup(context.Background(), p.uuid, p.podDir, p.netns, []Request{{Name: "cyc"}}, ports, cfg)
		p.kill()
		if err != nil {
			return nil, err
		}
		veths := hostVeths(nis)
		if err := Teardown(context.Background(), p.uuid, p.podDir, cfg); err != nil {
			t.Cleanup(func() {
				for _, v := range veths {
					exec.Command("ip", "link", "del", v).Run()
				}
			})
			return nil, err
		}
		return veths, nil
	}
	portsOf := make([][]PortForward, workers)
	for w := range portsOf {
		portsOf[w] = []PortForward{{HostPort: freePort(t), PodPort: podPort, Protocol: "tcp"}, {HostPort: freePort(t), PodPort: 53, Protocol: "udp"}}
	}
	if _, err := cycle(portsOf[0]); err != nil {
		t.Fatal(err)
	}
	fwBefore, linksBefore := firewallState(t), links(t)
	var (
		mu    sync.Mutex
		veths []string
		errs  []error
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < cycles; i += workers {
				vs, err := cycle(portsOf[w])
				mu.Lock()
				veths = append(veths, vs...)
				if err != nil {
					errs = append(errs, fmt.Errorf("cycle %d: %w", i, err))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if ls := leases(t, cfg.DataDir); len(ls) > 0 {
		t.Errorf("leases left: %v", ls)
	}
	if len(veths) != cycles*2 { // ptp's and default-restricted's
		t.Errorf("%d host veths seen in %d cycles", len(veths), cycles)
	}
	for _, v := range veths {
		if !linkGone(v) {
			t.Errorf("veth %s left", v)
		}
	}
	if fw := firewallState(t); fw != fwBefore {
		t.Errorf("rules left after %d cycles:\n%s", cycles, diffLines(fwBefore, fw))
	}
	if got := links(t); !reflect.DeepEqual(got, linksBefore) {
		t.Errorf("interfaces left after %d cycles: %s", cycles, diffLines(strings.Join(linksBefore, "\n"), strings.Join(got, "\n")))
	}
}
