// Command net measures the start latency that pod networking adds: rkt run
// with --net=default against --net=none, and podman run with its default
// network against --network=none, interleaved in one invocation, each a
// container running /bin/true. It prints medians and the added time.
//
// No traffic leaves the host: the containers run /bin/true.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/rkt/rkt/bench/internal/reap"
	"github.com/rkt/rkt/stage1/stage1test"
)

type variant struct {
	name string
	argv []string
	runs []time.Duration
	fail int
	err  string
}

func main() {
	rkt := flag.String("rkt", "build/bin/rkt", "rkt binary")
	before := flag.String("rkt-before", "", "another rkt binary (with its stage1 images beside it), e.g. built from the code before a change: its --net=default is timed too, and compared")
	dir := flag.String("dir", "", "rkt --dir (with the image fetched)")
	image := flag.String("image", "bench.rkt/true", "rkt image name")
	podmanImage := flag.String("podman-image", "", "podman image (empty: skip podman)")
	podmanGlobal := flag.String("podman-global", "", "podman global flags, e.g. --root and --runroot (space separated)")
	podmanArgs := flag.String("podman-args", "", "extra podman run arguments (space separated)")
	rounds := flag.Int("rounds", 20, "timed rounds")
	warmup := flag.Int("warmup", 2, "warm-up rounds")
	pause := flag.Duration("pause", 100*time.Millisecond, "pause before each timed command, so that what the previous one left running (podman's cleanup) does not land in its time")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "net: -dir is required")
		os.Exit(2)
	}
	// The shared state the networks leave on the host (rkt's shared
	// masquerading rule, IP forwarding, podman's netavark chains) is put
	// back as it was when the benchmark is done.
	restore := snapshotHost()
	defer restore()
	rktRun := func(net string) []string {
		return []string{*rkt, "--dir=" + *dir, "--insecure-options=image", "run", "--net=" + net, *image}
	}
	vs := []*variant{
		{name: "rkt --net=none", argv: rktRun("none")},
		{name: "rkt --net=default", argv: rktRun("default")},
	}
	if *before != "" {
		vs = append(vs, &variant{name: "rkt-before --net=default", argv: []string{*before, "--dir=" + *dir, "--insecure-options=image", "run", "--net=default", *image}})
	}
	if *podmanImage != "" {
		base := append(append(append([]string{"podman"}, strings.Fields(*podmanGlobal)...), "run", "--rm"), strings.Fields(*podmanArgs)...)
		vs = append(vs,
			&variant{name: "podman --network=none", argv: append(append([]string{}, base...), "--network=none", *podmanImage, "/bin/true")},
			&variant{name: "podman (default network)", argv: append(append([]string{}, base...), *podmanImage, "/bin/true")})
	}
	// What a tool leaves running (podman's conmon and cleanup) is waited
	// for, untimed, before the next command.
	if err := reap.Adopt(true); err != nil {
		fmt.Fprintf(os.Stderr, "net: become the subreaper of the commands: %v\n", err)
	}
	left, leftWait := 0, time.Duration(0)
	// diffs are the per-round differences default - none (both ran),
	// beforeDiffs default - rkt-before's default.
	var diffs, beforeDiffs []time.Duration
	for r := 0; r < *warmup+*rounds; r++ {
		round := map[string]time.Duration{}
		// Shuffled per round (the same in every run): with a rotation,
		// each variant would mostly follow the same other one, and what
		// that one leaves behind would land on it every time.
		for _, i := range rand.New(rand.NewPCG(uint64(r), 0x726b74)).Perm(len(vs)) {
			v := vs[i]
			t := time.Now()
			n, _ := reap.Orphans(10 * time.Second)
			left += n
			leftWait = max(leftWait, time.Since(t))
			time.Sleep(*pause)
			d, err := timeRun(v.argv)
			if err != nil {
				v.fail++
				v.err = err.Error()
				continue
			}
			if r >= *warmup {
				v.runs = append(v.runs, d)
				round[v.name] = d
			}
		}
		none, ok1 := round["rkt --net=none"]
		def, ok2 := round["rkt --net=default"]
		if ok1 && ok2 {
			diffs = append(diffs, def-none)
		}
		if b, ok := round["rkt-before --net=default"]; ok && ok2 {
			beforeDiffs = append(beforeDiffs, def-b)
		}
		if r%10 == 9 {
			exec.Command(*rkt, "--dir="+*dir, "gc", "--grace-period=0s").Run()
		}
	}
	exec.Command(*rkt, "--dir="+*dir, "gc", "--grace-period=0s").Run()
	fmt.Printf("| variant | runs | failed | median ms | p90 ms |\n|---|---:|---:|---:|---:|\n")
	med := map[string]float64{}
	for _, v := range vs {
		m, p90 := stats(v.runs)
		med[v.name] = m
		fmt.Printf("| %s | %d | %d | %.1f | %.1f |\n", v.name, len(v.runs), v.fail, m, p90)
		if v.fail > 0 {
			fmt.Printf("\n%s failed: %s\n", v.name, v.err)
		}
	}
	added := med["rkt --net=default"] - med["rkt --net=none"]
	fmt.Printf("\nrkt: --net=default adds %.1f ms over --net=none (difference of the medians; target <= 20 ms: %s)\n", added, passFail(added <= 20))
	if len(diffs) > 0 {
		m, p90 := stats(diffs)
		fmt.Printf("rkt: per round, default minus none: median %.1f ms, p90 %.1f ms (%d rounds)\n", m, p90, len(diffs))
	}
	if len(beforeDiffs) > 0 {
		m, p90 := stats(beforeDiffs)
		fmt.Printf("rkt: --net=default against -rkt-before's: %+.1f ms (difference of the medians); per round median %+.1f ms, p90 %+.1f ms\n",
			med["rkt --net=default"]-med["rkt-before --net=default"], m, p90)
	}
	if *podmanImage != "" {
		fmt.Printf("podman: its default network adds %.1f ms over --network=none\n", med["podman (default network)"]-med["podman --network=none"])
	}
	fmt.Printf("(the commands left %d processes behind, waited for untimed before the next command; the longest wait %.1f ms)\n", left, float64(leftWait.Microseconds())/1000)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func timeRun(argv []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return d, nil
}

// stats returns the median and 90th percentile in ms.
func stats(ds []time.Duration) (float64, float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(s[len(s)/2]), ms(s[(len(s)*9)/10])
}

// snapshotHost records the host's shared network state and returns what
// puts back what was not there: rkt's (stage1test.HostNet), and the
// netavark chains and iptables filter table podman's default network
// leaves behind.
func snapshotHost() func() {
	rkt := stage1test.SnapshotHostNet()
	netavark := exec.Command("iptables", "-t", "nat", "-S", "NETAVARK-HOSTPORT-DNAT").Run() == nil
	filter := exec.Command("nft", "list", "table", "ip", "filter").Run() == nil
	return func() {
		run := func(args ...string) { exec.Command(args[0], args[1:]...).Run() }
		if !netavark {
			run("iptables", "-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT")
			run("iptables", "-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT")
			run("iptables", "-t", "nat", "-D", "POSTROUTING", "-j", "NETAVARK-HOSTPORT-MASQ")
			for _, c := range []string{"NETAVARK-HOSTPORT-DNAT", "NETAVARK-HOSTPORT-MASQ", "NETAVARK-HOSTPORT-SETMARK"} {
				run("iptables", "-t", "nat", "-F", c)
				run("iptables", "-t", "nat", "-X", c)
			}
			run("iptables", "-D", "FORWARD", "-m", "comment", "--comment", "netavark firewall plugin rules", "-j", "NETAVARK_FORWARD")
			run("iptables", "-F", "NETAVARK_FORWARD")
			run("iptables", "-X", "NETAVARK_FORWARD")
		}
		rkt.Restore()
		if !filter {
			if out, err := exec.Command("iptables", "-S").Output(); err == nil && !strings.Contains(string(out), "-A ") && !strings.Contains(string(out), "-N ") {
				run("nft", "delete", "table", "ip", "filter")
			}
		}
	}
}
