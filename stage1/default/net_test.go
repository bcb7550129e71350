package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/stage1/stage1test"
)

// The tests of CNI networking run the real plugins (built into the test
// stage1's rootfs by TestMain), and only ever send traffic to 127.0.0.1
// and to the addresses of the pods they started.

// netApp is a shell app that prints the pod's /etc/hosts, /etc/resolv.conf
// and routes, separated by "@@", then its IPv4 addresses, then serves body
// over HTTP on :8080 when serve is set.
func netApp(body string, serve bool) stage1test.App {
	script := "cat /etc/hosts; echo @@; cat /etc/resolv.conf 2>/dev/null; echo @@; cat /proc/net/route; echo @@; exec /inspect --print-ipv4"
	if serve {
		script += " --serve-http=:8080 --serve-http-body=" + body
	}
	return stage1testApp("net", "/bin/sh", "-c", script)
}

// netOutput is what netApp printed.
type netOutput struct {
	hosts, resolv, routes string
	ip                    string // eth0's address, without the prefix length
}

var ipv4Line = regexp.MustCompile(`(?m)^ipv4: eth0 ([0-9.]+)/\d+$`)

func parseNetOutput(t *testing.T, out string) netOutput {
	t.Helper()
	parts := strings.Split(out, "@@\n")
	if len(parts) != 4 {
		t.Fatalf("the app's output has %d parts, want 4:\n%s", len(parts), out)
	}
	o := netOutput{hosts: parts[0], resolv: parts[1], routes: parts[2]}
	if m := ipv4Line.FindStringSubmatch(parts[3]); m != nil {
		o.ip = m[1]
	}
	return o
}

// hasDefaultRoute reports whether a /proc/net/route table has a default
// route (destination and mask 0).
func hasDefaultRoute(routes string) bool {
	for _, l := range strings.Split(routes, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return true
		}
	}
	return false
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) uint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint(l.Addr().(*net.TCPAddr).Port)
}

// httpGet fetches url (a pod's address or 127.0.0.1 only) without proxy.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func netPod(t *testing.T, spec stage1test.Spec) *stage1test.Pod {
	t.Helper()
	requireRoot(t)
	return stage1test.NewPod(t, binDir, spec)
}

func writeNetConf(t *testing.T, p *stage1test.Pod, name, conf string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.LocalConfig, "net.d", name), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gcPod runs the gc entrypoint as rkt gc does and checks that it worked.
func gcPod(t *testing.T, p *stage1test.Pod) {
	t.Helper()
	if r := p.Run("gc", "--local-config="+p.LocalConfig, p.UUID); r.Code != 0 {
		t.Fatalf("gc exited with %d: %s", r.Code, r.Stderr)
	}
}

func noNetTraces(t *testing.T, p *stage1test.Pod, veths []string, when string) {
	t.Helper()
	if left := stage1test.WaitNoNetTraces(p.UUID, p.DataDir, veths, 5*time.Second); len(left) > 0 {
		t.Errorf("%s, the pod's network is still there:\n%s", when, strings.Join(left, "\n"))
	}
}

// TestNetDefault runs a pod on the default network: it gets an address in
// 172.16.28.0/24 and a default route, its HTTP server is reached on that
// address and through a forwarded port of 127.0.0.1, its /etc/hosts names
// it, and its network is gone once it exited; gc then finds nothing to do
// (twice).
func TestNetDefault(t *testing.T) {
	body := fmt.Sprintf("pod-%d", time.Now().UnixNano())
	hostPort := freePort(t)
	p := netPod(t, stage1test.Spec{
		Apps: []stage1test.App{netApp(body, true)},
		Ports: []types.ExposedPort{{
			Name: "http", HostPort: hostPort, HostIP: net.ParseIP("127.0.0.1"),
			PodPort: &types.Port{Name: "http", Protocol: "tcp", Port: 8080, Count: 1},
		}},
	})
	s := startPod(t, p, nil, "--net=default", "--local-config="+p.LocalConfig)
	waitOutput(t, s, "serving: ")
	o := parseNetOutput(t, s.stdout.String())
	_, subnet, _ := net.ParseCIDR("172.16.28.0/24")
	if ip := net.ParseIP(o.ip); ip == nil || !subnet.Contains(ip) {
		t.Fatalf("eth0's address %q is not in %s\n%s", o.ip, subnet, s.stdout)
	}
	if !hasDefaultRoute(o.routes) {
		t.Errorf("no default route:\n%s", o.routes)
	}
	if !strings.Contains(o.hosts, "127.0.0.1\tlocalhost") || !strings.Contains(o.hosts, o.ip+"\trkt-"+p.UUID+"\n") {
		t.Errorf("/etc/hosts does not name localhost and rkt-%s on %s:\n%s", p.UUID, o.ip, o.hosts)
	}
	if got, err := httpGet("http://" + net.JoinHostPort(o.ip, "8080") + "/"); err != nil || got != body {
		t.Errorf("GET the pod's address: %q, %v", got, err)
	}
	if got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err != nil || got != body {
		t.Errorf("GET the forwarded port 127.0.0.1:%d: %q, %v", hostPort, got, err)
	}
	nis, err := networking.LoadNetInfo(p.Dir)
	if err != nil || len(nis) != 1 || nis[0].Name != "default" || nis[0].IP != o.ip {
		t.Errorf("net-info.json: %+v, %v", nis, err)
	}
	veths := stage1test.HostVeths(p.Dir)
	if len(veths) != 1 {
		t.Errorf("host interfaces of the pod: %v", veths)
	}
	if left := stage1test.NetTraces(p.UUID, p.DataDir, nil); len(left) == 0 {
		t.Errorf("no lease or firewall rule names the running pod: is NetTraces blind?")
	}

	p.Run("stop", p.UUID)
	s.wait(t, 15*time.Second)
	noNetTraces(t, p, veths, "after the pod exited")
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err == nil {
		t.Errorf("the forwarded port still answers after the pod exited")
	}
	if nis, _ := networking.LoadNetInfo(p.Dir); len(nis) != 1 || nis[0].IP != o.ip {
		t.Errorf("net-info.json of the exited pod: %+v", nis)
	}
	gcPod(t, p)
	gcPod(t, p)
	noNetTraces(t, p, veths, "after gc")
}

// TestNetDefaultRestricted: a host-only network, no default route.
func TestNetDefaultRestricted(t *testing.T) {
	p := netPod(t, stage1test.Spec{Apps: []stage1test.App{netApp("", false)}})
	r := p.RunPod("--net=default-restricted", "--local-config="+p.LocalConfig)
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	o := parseNetOutput(t, r.Stdout)
	_, subnet, _ := net.ParseCIDR("172.31.0.0/16")
	if ip := net.ParseIP(o.ip); ip == nil || !subnet.Contains(ip) {
		t.Errorf("eth0's address %q is not in %s\n%s", o.ip, subnet, r.Stdout)
	}
	if hasDefaultRoute(o.routes) {
		t.Errorf("default-restricted has a default route:\n%s", o.routes)
	}
	noNetTraces(t, p, nil, "after the pod exited")
}

// TestNetSetupFailure: the second network's plugin does not exist. init
// exits 254 saying so, no app started, and nothing is left of the first
// network, nor of the pod's cgroups.
func TestNetSetupFailure(t *testing.T) {
	p := netPod(t, stage1test.Spec{Apps: []stage1test.App{app("a", "--print-msg=started")}})
	writeNetConf(t, p, "10-good.conf", `{"cniVersion":"1.0.0","name":"good","type":"ptp","ipMasq":true,
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.222.71.0/24"}]]}}`)
	writeNetConf(t, p, "20-bad.conf", `{"cniVersion":"1.0.0","name":"bad","type":"no-such-plugin"}`)
	before := vethSet(t)
	r := p.RunPod("--net=good,bad", "--local-config="+p.LocalConfig)
	if r.Code != 254 {
		t.Fatalf("exit %d, want 254\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "stage1: failed to set up network good,bad:") || !strings.Contains(r.Stderr, "no-such-plugin") {
		t.Errorf("the error does not say what failed: %q", r.Stderr)
	}
	if strings.Contains(r.Stdout, "started") {
		t.Errorf("the app started: %q", r.Stdout)
	}
	noNetTraces(t, p, nil, "after the failure")
	if _, err := os.Stat(filepath.Join(p.Dir, networking.NetInfoFile)); err == nil {
		t.Errorf("net-info.json is left")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var added []string
		for v := range vethSet(t) {
			if !before[v] {
				added = append(added, v)
			}
		}
		if len(added) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("new host interfaces are left: %v", added)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, d := range strings.Fields(p.ReadFile("stage1/rootfs/rkt/cgroups")) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s is left", d)
		}
	}
	// The launcher had mounted the app's root while the networks were set
	// up: in its own mount namespace, gone with it.
	if m := stage1test.MountsBelow(t, p.Dir); len(m) > 0 {
		t.Errorf("mounts left below the pod directory: %v", m)
	}
}

// TestNetSetupInterrupted: SIGTERM to init while a plugin hangs in ADD
// stops the setup: init exits 254 at once, the app never started, and the
// network set up before the hanging one is gone.
func TestNetSetupInterrupted(t *testing.T) {
	p := netPod(t, stage1test.Spec{Apps: []stage1test.App{app("a", "--print-msg=started")}})
	started := filepath.Join(p.DataDir, "slow-plugin-started")
	plugin := "#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then : > " + started + "; exec sleep 30; fi\nexit 0\n"
	if err := os.WriteFile(filepath.Join(p.LocalConfig, "net.d", "slow-plugin"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	writeNetConf(t, p, "slow.conf", `{"cniVersion":"1.0.0","name":"slow","type":"slow-plugin"}`)
	s := startPod(t, p, nil, "--net=default,slow", "--local-config="+p.LocalConfig)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow plugin never ran\nstderr: %s", s.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t0 := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 10*time.Second); code != 254 {
		t.Errorf("exit %d, want 254\nstderr: %s", code, s.stderr)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("init took %v to give up", d)
	}
	if !strings.Contains(s.stderr.String(), "failed to set up network default,slow") || !strings.Contains(s.stderr.String(), "stopped by terminated") {
		t.Errorf("the error does not say what happened: %s", s.stderr)
	}
	if strings.Contains(s.stdout.String(), "started") {
		t.Errorf("the app started")
	}
	noNetTraces(t, p, nil, "after the interrupted setup")
	if m := stage1test.MountsBelow(t, p.Dir); len(m) > 0 {
		t.Errorf("mounts left below the pod directory: %v", m)
	}
}

// vethSet returns the host's veth interfaces.
func vethSet(t *testing.T) map[string]bool {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "veth") {
			out[i.Name] = true
		}
	}
	return out
}

// TestNetKilledPodThenGC: init is SIGKILLed (no teardown at exit); its
// network stays until gc, which removes all of it, and twice is fine.
func TestNetKilledPodThenGC(t *testing.T) {
	hostPort := freePort(t)
	p := netPod(t, stage1test.Spec{
		Apps: []stage1test.App{netApp("killed", true)},
		Ports: []types.ExposedPort{{
			Name: "http", HostPort: hostPort,
			PodPort: &types.Port{Name: "http", Protocol: "tcp", Port: 8080, Count: 1},
		}},
	})
	s := startPod(t, p, nil, "--net=default", "--local-config="+p.LocalConfig)
	waitOutput(t, s, "serving: ")
	veths := stage1test.HostVeths(p.Dir)
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.wait(t, 10*time.Second)
	if left := stage1test.NetTraces(p.UUID, p.DataDir, nil); len(left) == 0 {
		t.Fatalf("nothing of the killed pod's network is left before gc: the test proves nothing")
	}
	gcPod(t, p)
	noNetTraces(t, p, veths, "after gc")
	gcPod(t, p)
	for _, d := range strings.Fields(p.ReadFile("stage1/rootfs/rkt/cgroups")) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s is left after gc", d)
		}
	}
}

// TestNetDNS: resolv=stage0 binds the file stage0 wrote; with
// resolv=default a network's DNS settings make the pod's resolv.conf, and
// IP= picks the pod's address.
func TestNetDNS(t *testing.T) {
	p := netPod(t, stage1test.Spec{Apps: []stage1test.App{netApp("", false)}})
	const stage0Resolv = "# written by stage0\nnameserver 192.0.2.53\nsearch example.test\n"
	etc := filepath.Join(p.Dir, "stage1/rootfs/etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "rkt-resolv.conf"), []byte(stage0Resolv), 0o644); err != nil {
		t.Fatal(err)
	}
	r := p.RunPod("--net=default", "--dns-conf-mode=resolv=stage0,hosts=default", "--local-config="+p.LocalConfig)
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	o := parseNetOutput(t, r.Stdout)
	if o.resolv != stage0Resolv {
		t.Errorf("resolv=stage0: /etc/resolv.conf is %q, want %q", o.resolv, stage0Resolv)
	}
	if o.ip == "" || !strings.Contains(o.hosts, o.ip+"\trkt-"+p.UUID+"\n") {
		t.Errorf("hosts=default: /etc/hosts does not name the pod on %q:\n%s", o.ip, o.hosts)
	}

	p = netPod(t, stage1test.Spec{Apps: []stage1test.App{netApp("", false)}})
	writeNetConf(t, p, "dns.conf", `{"cniVersion":"1.0.0","name":"withdns","type":"ptp",
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.222.72.0/24"}]]},
		"dns":{"nameservers":["192.0.2.1"],"search":["pod.test"]}}`)
	r = p.RunPod("--net=withdns:IP=10.222.72.9", "--local-config="+p.LocalConfig)
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	o = parseNetOutput(t, r.Stdout)
	if !strings.Contains(o.resolv, "nameserver 192.0.2.1\n") || !strings.Contains(o.resolv, "search pod.test\n") {
		t.Errorf("resolv=default: /etc/resolv.conf does not have the network's DNS settings:\n%s", o.resolv)
	}
	if o.ip != "10.222.72.9" {
		t.Errorf("IP=10.222.72.9: eth0 has %q", o.ip)
	}
	noNetTraces(t, p, nil, "after the pod exited")
}
