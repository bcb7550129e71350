package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/stage1/podcfg"
)

// teardownTimeout bounds the teardown of the networks when the pod exits.
const teardownTimeout = time.Minute

// netSetup is the setup of the pod's CNI networks (--net other than host
// and none), under way in the background.
type netSetup struct {
	r    *runner
	done chan netResult
}

type netResult struct {
	nis []networking.NetInfo
	cfg networking.Config
	err error
}

// startNetwork starts setting up the pod's networks in the network
// namespace of the supervisor (r.supPid), whose launchers wait for the
// start line meanwhile. Setup rolls itself back on failure.
func (r *runner) startNetwork(ctx context.Context) *netSetup {
	n := &netSetup{r: r}
	if !r.opts.NetContained() {
		return n
	}
	n.done = make(chan netResult, 1)
	go func() {
		cfg, err := podcfg.NetConfig(r.pod.Dir, r.opts.LocalConfig, r.logf)
		if err != nil {
			n.done <- netResult{err: err}
			return
		}
		cfg.LoopbackReady = true // the supervisor brings lo up
		netns := fmt.Sprintf("/proc/%d/ns/net", r.supPid)
		nis, err := networking.Setup(ctx, r.pod.UUID, r.pod.Dir, netns, r.opts.Networks, r.pod.Ports, cfg)
		n.done <- netResult{nis: nis, cfg: cfg, err: err}
	}()
	return n
}

// finish waits for the networks, then writes the pod's /etc/hosts and
// /etc/resolv.conf that depend on their results (the pod's other files
// are written by then). It reports whether the apps are to use the
// generated resolv.conf. On failure nothing of the networks is left.
func (n *netSetup) finish(ctx context.Context) (bool, error) {
	if n.done == nil {
		return false, nil
	}
	res := <-n.done
	n.done = nil
	r := n.r
	if res.err != nil {
		return false, fmt.Errorf("failed to set up network %s: %w", r.opts.Net, res.err)
	}
	r.netCfg = &res.cfg
	resolv, err := r.writeNetFiles(res.nis)
	if err != nil {
		terr := r.teardownNetwork(ctx)
		r.netCfg = nil
		if terr != nil {
			return false, fmt.Errorf("%w (and tearing the networks down failed too: %w: run `rkt gc`)", err, terr)
		}
		return false, err
	}
	return resolv, nil
}

// abort, after a failure elsewhere, waits for the networks and tears
// them down if they were set up.
func (n *netSetup) abort(ctx context.Context) {
	if n.done == nil {
		return
	}
	res := <-n.done
	n.done = nil
	if res.err != nil {
		return // rolled back
	}
	n.r.netCfg = &res.cfg
	if err := n.r.teardownNetwork(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stage1: the pod did not start, and tearing its networks down failed: %v (run `rkt gc`)\n", err)
	}
	n.r.netCfg = nil
}

// writeNetFiles writes the files made from the networks' results: the
// generated /etc/hosts (hosts=default: localhost, and the hostname on the
// pod's first address) and, with resolv=default, an /etc/resolv.conf from
// the DNS settings the networks returned, if any (else the image's file
// stays), which it reports.
func (r *runner) writeNetFiles(nis []networking.NetInfo) (bool, error) {
	if r.opts.HostsMode == "default" {
		hosts := networking.HostsFile(nil, r.pod.Hostname, nis)
		if err := writeFile(filepath.Join(r.pod.Dir, podcfg.HostsFile), string(hosts)); err != nil {
			return false, err
		}
	}
	if r.opts.ResolvMode != "default" {
		return false, nil
	}
	dns := networking.DNSFromNets(nis)
	if dns.Empty() {
		return false, nil
	}
	resolv := filepath.Join(r.pod.Dir, podcfg.ResolvConfGenerated)
	if err := writeFile(resolv, string(networking.ResolvConf(dns))); err != nil {
		return false, err
	}
	r.logf("resolv.conf from the networks' DNS settings: %d name servers", len(dns.Nameservers))
	return true, nil
}

// teardownNetwork deletes the pod's networks when the pod cannot start
// after they were set up. (When a pod that started exits, the host-side
// process runs the teardown helper, Netdown; gc tears down again,
// harmlessly, and covers a host-side process that was killed.)
func (r *runner) teardownNetwork(ctx context.Context) error {
	if r.netCfg == nil {
		return nil
	}
	// A hung plugin must not keep rkt from exiting: gc retries.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	if err := networking.Teardown(ctx, r.pod.UUID, r.pod.Dir, *r.netCfg); err != nil {
		return err
	}
	return podcfg.MarkNetDown(r.pod.Dir)
}
