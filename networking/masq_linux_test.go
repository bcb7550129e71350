package networking

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestEnsureMasqConcurrently adds a shared rule for a test subnet from
// several goroutines at once, with each backend: exactly one adds it, and
// the firewall holds it once.
func TestEnsureMasqConcurrently(t *testing.T) {
	needRoot(t)
	for i, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			if _, err := exec.LookPath(map[string]string{"iptables": "iptables", "nftables": "nft"}[backend]); err != nil {
				t.Skip(err)
			}
			_, subnet, _ := net.ParseCIDR([]string{"10.222.12.0/24", "10.222.13.0/24"}[i])
			r := masqRule{network: "rkttest-masq", subnet: subnet, backend: backend}
			t.Cleanup(func() { removeMasqRule(r) })
			lockDir := t.TempDir()
			const n = 4
			var wg sync.WaitGroup
			added := make([]bool, n)
			errs := make([]error, n)
			for g := 0; g < n; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					added[g], errs[g] = ensureMasq(context.Background(), lockDir, r)
				}()
			}
			wg.Wait()
			count := 0
			for g := 0; g < n; g++ {
				if errs[g] != nil {
					t.Fatal(errs[g])
				}
				if added[g] {
					count++
				}
			}
			if count != 1 {
				t.Errorf("%d callers added the rule, want 1", count)
			}
			if got := countMasqRule(t, r); got != 1 {
				t.Errorf("the rule is in the firewall %d times, want once", got)
			}
			if again, err := ensureMasq(context.Background(), lockDir, r); err != nil || again {
				t.Errorf("ensureMasq of a present rule: added %v, %v", again, err)
			}
		})
	}
}

// countMasqRule counts the rule in the firewall.
func countMasqRule(t *testing.T, r masqRule) int {
	t.Helper()
	if r.backend == "iptables" {
		out, err := exec.Command(r.iptablesCmd(), "-w", "-t", "nat", "-S", "POSTROUTING").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(out), "-s "+r.subnet.String()+" ! -d "+r.subnet.String()+" -m iprange")
	}
	out, _ := exec.Command("nft", "list", "chain", "inet", masqTable, masqChain).Output()
	return strings.Count(string(out), r.nftMatch()+" "+r.nftComment())
}

// removeMasqRule removes a shared rule the tests added (and rkt's
// nftables table if that leaves it empty).
func removeMasqRule(r masqRule) {
	if r.backend == "iptables" {
		for exec.Command(r.iptablesCmd(), r.iptablesArgs("-D")...).Run() == nil {
		}
		return
	}
	out, err := exec.Command("nft", "-a", "list", "chain", "inet", masqTable, masqChain).Output()
	if err != nil {
		return
	}
	rules := 0
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(l, r.nftComment()) && strings.Contains(l, "# handle "):
			handle := l[strings.LastIndex(l, " ")+1:]
			exec.Command("nft", "delete", "rule", "inet", masqTable, masqChain, "handle", handle).Run()
		case strings.Contains(l, "masquerade"):
			rules++
		}
	}
	if rules == 0 {
		exec.Command("nft", "delete", "table", "inet", masqTable).Run()
	}
}
