package networking

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
)

// TestSetupLatency measures what --net=default adds to a pod's start over
// --net=none (which only brings lo up): the median of 20 Setups, and
// where the time goes. It is a measurement, not a check: run it with
// RKT_NETWORKING_LATENCY=1 -v to see the figures. The variants run
// interleaved, so that load from elsewhere hits them alike.
func TestSetupLatency(t *testing.T) {
	if os.Getenv("RKT_NETWORKING_LATENCY") == "" {
		t.Skip("set RKT_NETWORKING_LATENCY=1 to measure")
	}
	plugins := needRoot(t)
	const runs = 20
	// The variants replace the built-in default network with their own
	// (a user network named default), so that each runs one network.
	type variant struct {
		name, conf string
		ports      []PortForward
		cfg        Config
		wall, cpu  []time.Duration
		phases     map[string][]time.Duration
	}
	variants := []*variant{
		{name: "default (built-in: ptp and host-local in process, one shared masquerading rule)"},
		{name: "stock ptp and host-local execs, without ipMasq (a net.d network named default)", conf: `{"cniVersion":"1.0.0","name":"default","type":"ptp",
			"ipam":{"type":"host-local","ranges":[[{"subnet":"10.222.9.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}`},
		{name: "ptp, ipMasq via nftables", conf: `{"cniVersion":"1.0.0","name":"default","type":"ptp","ipMasq":true,"ipMasqBackend":"nftables",
			"ipam":{"type":"host-local","ranges":[[{"subnet":"10.222.10.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}`},
		{name: "default + 1 port (portmap)", ports: []PortForward{{HostPort: 18080, PodPort: podPort, Protocol: "tcp"}}},
	}
	for _, v := range variants {
		v.phases = map[string][]time.Duration{}
		netd := map[string]string{}
		if v.conf != "" {
			netd["default.conf"] = v.conf
		}
		v.cfg = testConfig(t, plugins, netd)
	}
	settle, _ := time.ParseDuration(os.Getenv("RKT_NETWORKING_LATENCY_SETTLE"))
	var none []time.Duration
	for i := 0; i < runs; i++ {
		p := startPod(t, "bench")
		t0 := time.Now()
		if err := loopbackUp(p.netns); err != nil {
			t.Fatal(err)
		}
		none = append(none, time.Since(t0))
		p.kill()
		for _, v := range variants {
			p := startPod(t, "bench")
			// Let the kernel finish destroying the last pod's namespace
			// (it takes the locks Setup needs) when asked to.
			time.Sleep(settle)
			var log []string
			c := v.cfg
			c.Logf = func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
			cpu0 := childrenCPU()
			t0 := time.Now()
			if _, err := Setup(context.Background(), p.uuid, p.podDir, p.netns, []Request{{Name: NetDefault}}, v.ports, c); err != nil {
				t.Fatal(err)
			}
			v.wall = append(v.wall, time.Since(t0))
			v.cpu = append(v.cpu, childrenCPU()-cpu0)
			for k, d := range phaseTimes(log) {
				v.phases[k] = append(v.phases[k], d)
			}
			p.kill()
			if err := Teardown(context.Background(), p.uuid, p.podDir, v.cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, v := range variants {
		var keys []string
		for k := range v.phases {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "\n    %-22s median %s", k, ms(median(v.phases[k])))
		}
		t.Logf("%s: Setup median %s (min %s, max %s), CPU time of the programs it ran (plugins, iptables) median %s; added over --net=none (lo up, median %s): %s%s",
			v.name, ms(median(v.wall)), ms(minOf(v.wall)), ms(maxOf(v.wall)), ms(median(v.cpu)), ms(median(none)),
			ms(median(v.wall)-median(none)), b.String())
	}
	t.Logf("components (medians of %d): %s", runs, components(t, plugins, runs))
}

// components times the pieces of ptp's ADD on their own.
func components(t *testing.T, plugins string, runs int) string {
	var goExec, ipt, veth, ipam []time.Duration
	dataDir := t.TempDir()
	ipamConf := `{"cniVersion":"1.0.0","name":"comp","ipam":{"type":"host-local","dataDir":"` + dataDir + `","ranges":[[{"subnet":"10.222.12.0/24"}]]}}`
	for i := 0; i < runs; i++ {
		// A Go plugin process that does nothing.
		cmd := exec.Command(filepath.Join(plugins, "ptp"))
		cmd.Env = append(os.Environ(), "CNI_COMMAND=VERSION")
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ptp VERSION: %v %s", err, out)
		}
		goExec = append(goExec, time.Since(t0))

		// host-local ADD (what ptp execs first).
		cmd = exec.Command(filepath.Join(plugins, "host-local"))
		cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID=comp"+strconv.Itoa(i), "CNI_NETNS=/proc/1/ns/net", "CNI_IFNAME=eth0", "CNI_PATH="+plugins)
		cmd.Stdin = bytes.NewReader([]byte(ipamConf))
		t0 = time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("host-local ADD: %v %s", err, out)
		}
		ipam = append(ipam, time.Since(t0))

		// One iptables run (a check for a rule that is not there).
		t0 = time.Now()
		exec.Command("iptables", "-t", "nat", "-C", "POSTROUTING", "-s", "10.255.255.254/32", "-j", "RETURN", "--wait").Run()
		ipt = append(ipt, time.Since(t0))

		// The veth pair, made from inside the pod's namespace with its
		// peer in the host's, as ptp does.
		p := startPod(t, "comp")
		var d time.Duration
		err := ns.WithNetNSPath(p.netns, func(hostNS ns.NetNS) error {
			t0 := time.Now()
			_, _, err := ip.SetupVeth("eth0", 1500, "", hostNS)
			d = time.Since(t0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		veth = append(veth, d)
		p.kill()
	}
	runtime.KeepAlive(ipamConf)
	return fmt.Sprintf("\n    Go plugin exec (ptp VERSION)   %s\n    host-local ADD exec            %s\n    one iptables run               %s (ptp's ipMasq runs it 9 times)\n    veth pair from the pod's netns %s",
		ms(median(goExec)), ms(median(ipam)), ms(median(ipt)), ms(median(veth)))
}

// childrenCPU is the CPU time of the reaped child processes so far.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var pluginLine = regexp.MustCompile(`plugin (\S+) (\S+): ([\d.]+)ms`)

// phaseTimes picks the per-plugin times out of Setup's log.
func phaseTimes(log []string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, l := range log {
		if m := pluginLine.FindStringSubmatch(l); m != nil {
			f, _ := strconv.ParseFloat(m[3], 64)
			out["exec "+m[1]+" "+m[2]] += time.Duration(f * float64(time.Millisecond))
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
