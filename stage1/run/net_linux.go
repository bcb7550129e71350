package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/stage1/podcfg"
)

// teardownTimeout bounds the teardown of the networks when the pod exits.
const teardownTimeout = time.Minute

// setupNetwork sets up the pod's CNI networks (--net other than host and
// none) in the network namespace of the supervisor, process pid, which
// waits for its configuration meanwhile; then it writes the pod's
// /etc/resolv.conf and /etc/hosts that depend on the networks' results
// and points the apps at them. On failure nothing of the networks is
// left: Setup rolls itself back, and so does this for what came after.
func (r *runner) setupNetwork(ctx context.Context, pid int) error {
	if !r.opts.NetContained() {
		return nil
	}
	cfg, err := podcfg.NetConfig(r.pod.Dir, r.opts.LocalConfig, r.logf)
	if err != nil {
		return fmt.Errorf("failed to set up network %s: %w", r.opts.Net, err)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	nis, err := networking.Setup(ctx, r.pod.UUID, r.pod.Dir, netns, r.opts.Networks, r.pod.Ports, cfg)
	if err != nil {
		return fmt.Errorf("failed to set up network %s: %w", r.opts.Net, err)
	}
	r.netCfg = &cfg
	if err := r.writeNetFiles(nis); err != nil {
		terr := r.teardownNetwork(ctx)
		r.netCfg = nil
		if terr != nil {
			return fmt.Errorf("%w (and tearing the networks down failed too: %w: run `rkt gc`)", err, terr)
		}
		return err
	}
	return nil
}

// setupNetworkOrStop is setupNetwork, cancelled by a signal that comes
// from sigs meanwhile (SIGTERM, SIGINT or SIGHUP to rkt): a pod asked to
// stop while its networks are set up (or a plugin hangs) does not start.
// It returns the signal that came, if any, which the caller forwards to
// the supervisor if the setup got done anyway.
func (r *runner) setupNetworkOrStop(ctx context.Context, pid int, sigs <-chan os.Signal) (os.Signal, error) {
	if !r.opts.NetContained() {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sig os.Signal
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case sig = <-sigs:
			r.logf("got %v while setting up the networks: giving up", sig)
			cancel()
		case <-done:
		}
	}()
	err := r.setupNetwork(ctx, pid)
	close(done)
	<-finished
	if err != nil && sig != nil {
		return sig, fmt.Errorf("%w (stopped by %v before the pod started)", err, sig)
	}
	return sig, err
}

// writeNetFiles writes the files made from the networks' results: the
// generated /etc/hosts (hosts=default: localhost, and the hostname on the
// pod's first address) and, with resolv=default, an /etc/resolv.conf from
// the DNS settings the networks returned, if any (else the image's file
// stays).
func (r *runner) writeNetFiles(nis []networking.NetInfo) error {
	if r.opts.HostsMode == "default" {
		hosts := networking.HostsFile(nil, r.pod.Hostname, nis)
		if err := writeFile(filepath.Join(r.pod.Dir, podcfg.HostsFile), string(hosts)); err != nil {
			return err
		}
	}
	if r.opts.ResolvMode != "default" {
		return nil
	}
	dns := networking.DNSFromNets(nis)
	if dns.Empty() {
		return nil
	}
	resolv := filepath.Join(r.pod.Dir, podcfg.ResolvConfGenerated)
	if err := writeFile(resolv, string(networking.ResolvConf(dns))); err != nil {
		return err
	}
	for _, a := range r.pod.Apps {
		a.Launch.ResolvConf = resolv
	}
	r.logf("resolv.conf from the networks' DNS settings: %d name servers", len(dns.Nameservers))
	return nil
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

// killSupervisor SIGKILLs the supervisor, which has not started any app
// yet, and reaps it, so that its cgroups can be removed.
func killSupervisor(pid int) {
	unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}

// warnf prints a warning of the run entrypoint.
func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "stage1: "+format+"\n", args...)
}
