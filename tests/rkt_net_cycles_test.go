package tests

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/stage1/stage1test"
)

// TestNetKillCycles runs 50 cycles of: a pod on the default network (a
// veth, an IPAM lease, iptables state), kill -9 of its outer process (rkt
// run's PID), then `rkt gc`. Afterwards no veth, no per-pod iptables rule
// and no IPAM lease may be left. Only the host and the test's own pods
// are involved: the apps just sleep.
func TestNetKillCycles(t *testing.T) {
	e := newRealEnv(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("iptables is needed (apt-get install iptables): %v", err)
	}
	// Shared network state (ip_forward, portmap chains, the default
	// network's masquerade rule) is put back as it was found.
	hostNet := stage1test.SnapshotHostNet()
	t.Cleanup(hostNet.Restore)
	vethsBefore := hostVeths(t)
	rulesBefore := natRules(t)
	cycles := 50
	if testing.Short() {
		cycles = 5
	}
	ips, uuids := map[string]bool{}, map[string]bool{}
	for i := 0; i < cycles; i++ {
		bp := e.startReady("--net=default", e.img, "--exec=/inspect", "--", "--sleep=60s")
		uuids[bp.UUID] = true
		nis, err := networking.LoadNetInfo(e.podDir(bp.UUID))
		if err != nil || len(nis) == 0 || nis[0].IP == "" {
			t.Fatalf("cycle %d: pod %s has no network recorded: %v %+v", i, bp.UUID, err, nis)
		}
		ips[nis[0].IP] = true
		if err := syscall.Kill(bp.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-bp.done
		if out := e.MustRun("gc", "--grace-period=0s"); !strings.Contains(out, bp.UUID) {
			t.Fatalf("cycle %d: gc did not remove pod %s:\n%s", i, bp.UUID, out)
		}
	}
	// The kernel removes a dead namespace's veth asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for {
		extra := difference(hostVeths(t), vethsBefore)
		if len(extra) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("veths left after %d cycles: %v", cycles, extra)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if extra := difference(natRules(t), rulesBefore); len(extra) > 0 {
		t.Errorf("iptables nat rules left after %d cycles:\n%s", cycles, strings.Join(extra, "\n"))
	}
	// Leases are host-wide: only those of this test's pods count.
	leases, _ := filepath.Glob(filepath.Join(networking.LeaseDir(networking.HostDir()), "*", "*"))
	for _, l := range leases {
		if net.ParseIP(filepath.Base(l)) == nil {
			continue
		}
		if data, err := os.ReadFile(l); err == nil && uuids[strings.SplitN(string(data), "\r", 2)[0]] {
			t.Errorf("IPAM lease left: %s", l)
		}
	}
	if len(ips) < 2 && cycles > 1 {
		t.Logf("all cycles got address %v", ips)
	}
}

// hostVeths lists the host's veth interfaces.
func hostVeths(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.SplitN(l, ": ", 3); len(f) >= 2 {
			names = append(names, strings.SplitN(f[1], "@", 2)[0])
		}
	}
	return names
}

// natRules lists the nat table's rules, without the state shared by all
// pods of a network (portmap's chains, the default network's masquerade
// rule), which stays by design (docs/networking.md).
func natRules(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("iptables -S: %v", err)
	}
	var rules []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "CNI-HOSTPORT") || strings.Contains(l, "rkt: masquerade for network") {
			continue
		}
		rules = append(rules, l)
	}
	sort.Strings(rules)
	return rules
}

// difference returns what a has and b has not.
func difference(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
