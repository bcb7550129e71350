package run

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/stage1/podcfg"
)

// teardownTimeout bounds the teardown of the networks when the pod exits.
const teardownTimeout = time.Minute

// setupNetwork sets up the pod's CNI networks (--net other than host and
// none) in the network namespace of the supervisor, process pid, whose
// launchers wait for the start line meanwhile; then it writes the pod's
// /etc/hosts and /etc/resolv.conf that depend on the networks' results.
// It reports whether the apps are to use the generated resolv.conf. On
// failure nothing of the networks is left: Setup rolls itself back, and
// so does this for what came after.
func (r *runner) setupNetwork(ctx context.Context, pid int) (bool, error) {
	if !r.opts.NetContained() {
		return false, nil
	}
	cfg, err := podcfg.NetConfig(r.pod.Dir, r.opts.LocalConfig, r.logf)
	if err != nil {
		return false, fmt.Errorf("failed to set up network %s: %w", r.opts.Net, err)
	}
	cfg.LoopbackReady = true // the supervisor brings lo up
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	nis, err := networking.Setup(ctx, r.pod.UUID, r.pod.Dir, netns, r.opts.Networks, r.pod.Ports, cfg)
	if err != nil {
		return false, fmt.Errorf("failed to set up network %s: %w", r.opts.Net, err)
	}
	r.netCfg = &cfg
	resolv, err := r.writeNetFiles(nis)
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

// teardownNetwork deletes the pod's networks once its processes are gone
// (the network namespace with them), so that its addresses, masquerading
// rules and port forwards are released when it exits, not only at gc
// (which tears down again, harmlessly, and covers a run entrypoint that
// was killed).
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
