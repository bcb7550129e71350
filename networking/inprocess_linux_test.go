package networking

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// ptpCall is one ADD or DEL of a ptp network for a test pod, run by the
// stock plugin (exec) or by ptpInProcess.
type ptpCall struct {
	plugins, conf string
}

func (c ptpCall) run(t *testing.T, inProcess bool, cmd string, p *testPod, netns, cniArgs string) ([]byte, error) {
	t.Helper()
	env := []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + p.uuid, "CNI_NETNS=" + netns,
		"CNI_IFNAME=eth0", "CNI_PATH=" + c.plugins, "CNI_ARGS=" + cniArgs}
	path := filepath.Join(c.plugins, "ptp")
	if inProcess {
		out, handled, err := ptpInProcess(context.Background(), path, []byte(c.conf), env)
		if !handled {
			t.Fatalf("ptpInProcess did not handle %s of %s", cmd, c.conf)
		}
		return out, err
	}
	return (&invoke.RawExec{}).ExecPlugin(context.Background(), path, []byte(c.conf), append(os.Environ(), env...))
}

var (
	macRe     = regexp.MustCompile(`([0-9a-f]{2}:){5}[0-9a-f]{2}`)
	ifindexRe = regexp.MustCompile(`(?m)^\d+: |@if\d+|link-netns(id|) \S+|\bveth[0-9a-f]{8}\b|fe80::\S+`)
	spaceRe   = regexp.MustCompile(`\s+`)
)

// netState is what an ADD made, with the pod's and the host end's
// names, indexes and addresses replaced by placeholders, so that two
// pods' states compare equal when they were made alike.
func netState(t *testing.T, p *testPod, res *current.Result) string {
	t.Helper()
	hostVeth := res.Interfaces[0].Name
	podIP := res.IPs[0].Address.IP.String()
	var b strings.Builder
	show := func(what string, out string, err error) {
		if err != nil {
			t.Fatalf("%s: %v %s", what, err, out)
		}
		out = regexp.MustCompile(regexp.QuoteMeta(podIP)+`\b`).ReplaceAllString(out, "POD-IP")
		out = macRe.ReplaceAllString(out, "MAC")
		out = ifindexRe.ReplaceAllString(out, "X")
		fmt.Fprintf(&b, "%s:\n%s\n", what, spaceRe.ReplaceAllString(strings.TrimSpace(out), " "))
	}
	for _, c := range [][]string{
		{"ip", "-d", "link", "show", "eth0"}, {"ip", "addr", "show", "eth0"},
		{"ip", "route", "show", "table", "all"}, {"ip", "-6", "route", "show", "table", "main"},
		{"sysctl", "-n", "net.ipv6.conf.eth0.accept_ra", "net.ipv4.conf.eth0.forwarding"},
	} {
		out, err := p.in(t, c...)
		show("pod: "+strings.Join(c, " "), out, err)
	}
	for _, c := range [][]string{
		{"ip", "-d", "link", "show", hostVeth}, {"ip", "addr", "show", hostVeth},
		{"ip", "route", "show", "dev", hostVeth}, {"ip", "-6", "route", "show", "dev", hostVeth},
		{"sysctl", "-n", "net.ipv6.conf." + hostVeth + ".accept_ra", "net.ipv4.ip_forward"},
	} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		show("host: "+strings.ReplaceAll(strings.Join(c, " "), hostVeth, "VETH"), string(out), err)
	}
	return b.String()
}

// TestInProcessPtpMatchesStock runs the stock ptp plugin and ptpInProcess
// on the same network for two pods and checks that they set up the same
// interfaces, addresses, routes, sysctls, leases and result, and that
// each one's DEL undoes what the other's ADD did.
func TestInProcessPtpMatchesStock(t *testing.T) {
	plugins := needRoot(t)
	data := t.TempDir()
	c := ptpCall{plugins: plugins, conf: `{"cniVersion":"1.0.0","name":"inproc","type":"ptp","ipMasq":false,"mtu":1400,
		"ipam":{"type":"host-local","dataDir":"` + data + `","ranges":[[{"subnet":"10.222.40.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}`}
	stock, ours := startPod(t, "stock"), startPod(t, "ours")
	var results [2]*current.Result
	var states [2]string
	for i, p := range []*testPod{stock, ours} {
		out, err := c.run(t, i == 1, "ADD", p, p.netns, "")
		if err != nil {
			t.Fatalf("ADD (in process: %v): %v", i == 1, err)
		}
		var r current.Result
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("result %s: %v", out, err)
		}
		results[i] = &r
		veth := r.Interfaces[0].Name
		t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
		states[i] = netState(t, p, &r)
	}
	if states[0] != states[1] {
		t.Errorf("the network set up in process differs from the stock plugin's:\n%s", diffLines(states[0], states[1]))
	}
	// The results differ only in names, addresses and the namespace.
	norm := func(r *current.Result, p *testPod) string {
		b, _ := json.Marshal(r)
		s := strings.ReplaceAll(string(b), r.IPs[0].Address.IP.String(), "POD-IP")
		s = strings.ReplaceAll(s, p.netns, "NETNS")
		s = strings.ReplaceAll(s, r.Interfaces[0].Name, "VETH")
		return macRe.ReplaceAllString(s, "MAC")
	}
	if a, b := norm(results[0], stock), norm(results[1], ours); a != b {
		t.Errorf("results differ:\nstock:      %s\nin process: %s", a, b)
	}
	leased := leases(t, data)
	if len(leased) != 2 {
		t.Fatalf("leases %v, want two", leased)
	}
	for i, p := range []*testPod{stock, ours} {
		got, err := os.ReadFile(filepath.Join(data, "inproc", results[i].IPs[0].Address.IP.String()))
		if want := p.uuid + "\r\neth0"; err != nil || string(got) != want {
			t.Errorf("lease of %s: %q %v, want %q", results[i].IPs[0].Address.IP, got, err, want)
		}
	}

	// Each DEL undoes the other's ADD, and can run again.
	for i, p := range []*testPod{stock, ours} {
		inProcess := i == 0
		for range 2 {
			if _, err := c.run(t, inProcess, "DEL", p, p.netns, ""); err != nil {
				t.Fatalf("DEL (in process: %v) of the other's ADD: %v", inProcess, err)
			}
		}
		if veth := results[i].Interfaces[0].Name; linkExists(veth) {
			t.Errorf("veth %s left after DEL", veth)
		}
		if out, _ := p.in(t, "ip", "link", "show", "eth0"); !strings.Contains(out, "does not exist") {
			t.Errorf("eth0 left in the pod after DEL: %s", out)
		}
	}
	if l := leases(t, data); len(l) != 0 {
		t.Errorf("leases left after DEL: %v", l)
	}
}

// TestInProcessPtpFailures checks that a failed in-process ADD leaves no
// lease and no interface, that DEL without a network namespace (the pod
// was killed) releases the lease, and that what it does not handle is
// left to the plugin.
func TestInProcessPtpFailures(t *testing.T) {
	plugins := needRoot(t)
	data := t.TempDir()
	c := ptpCall{plugins: plugins, conf: `{"cniVersion":"1.0.0","name":"inprocfail","type":"ptp",
		"ipam":{"type":"host-local","dataDir":"` + data + `","ranges":[[{"subnet":"10.222.41.0/30"}]]}}`}
	before := links(t)
	p := startPod(t, "p")
	for _, tc := range []struct {
		netns, args, want string
	}{
		{p.netns, "IP=10.222.99.9", "failed to allocate all requested IPs"},
		{p.netns, "IP=10.222.41.1", "gateway"},
		{"/proc/self/nonexistent/ns/net", "", "open the network namespace"},
	} {
		_, err := c.run(t, true, "ADD", p, tc.netns, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ADD with %q in %s: %v, want an error with %q", tc.args, tc.netns, err, tc.want)
		}
		if l := leases(t, data); len(l) != 0 {
			t.Errorf("leases left after a failed ADD: %v", l)
		}
		if now := links(t); !reflect.DeepEqual(now, before) {
			t.Errorf("interfaces after a failed ADD: %v, before: %v", now, before)
		}
	}
	// The range has one address for pods: the second pod finds none.
	out, err := c.run(t, true, "ADD", p, p.netns, "")
	if err != nil {
		t.Fatal(err)
	}
	var r current.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	veth := r.Interfaces[0].Name
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	q := startPod(t, "q")
	if _, err := c.run(t, true, "ADD", q, q.netns, ""); err == nil || !strings.Contains(err.Error(), "no IP addresses available in range set") {
		t.Errorf("ADD in an exhausted range: %v", err)
	}
	p.kill()
	if _, err := c.run(t, true, "DEL", p, "", ""); err != nil {
		t.Fatalf("DEL without a network namespace: %v", err)
	}
	if l := leases(t, data); len(l) != 0 {
		t.Errorf("leases left after DEL: %v", l)
	}
	if !linkGone(veth) {
		t.Errorf("veth %s left after the pod was killed", veth)
	}

	// Not handled: masquerading per pod, another IPAM, another command
	// or plugin, host-local's resolvConf.
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=x", "CNI_NETNS=" + q.netns, "CNI_IFNAME=eth0"}
	ptp := filepath.Join(plugins, "ptp")
	for _, tc := range []struct{ path, conf, cmd string }{
		{ptp, `{"cniVersion":"1.0.0","name":"n","type":"ptp","ipMasq":true,"ipam":{"type":"host-local","subnet":"10.222.42.0/24"}}`, "ADD"},
		{ptp, `{"cniVersion":"1.0.0","name":"n","type":"ptp","ipam":{"type":"dhcp"}}`, "ADD"},
		{ptp, `{"cniVersion":"1.0.0","name":"n","type":"ptp","ipam":{"type":"host-local","subnet":"10.222.42.0/24","resolvConf":"/etc/resolv.conf"}}`, "ADD"},
		{ptp, `{"cniVersion":"1.0.0","name":"n","type":"ptp","ipam":{"type":"host-local","subnet":"10.222.42.0/24"}}`, "CHECK"},
		{filepath.Join(plugins, "bridge"), `{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"host-local","subnet":"10.222.42.0/24"}}`, "ADD"},
	} {
		env[0] = "CNI_COMMAND=" + tc.cmd
		if _, handled, err := ptpInProcess(context.Background(), tc.path, []byte(tc.conf), env); handled || err != nil {
			t.Errorf("%s %s %s: handled %v, %v; want it left to the plugin", filepath.Base(tc.path), tc.cmd, tc.conf, handled, err)
		}
	}
}
