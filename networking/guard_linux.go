package networking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// guardLockFile, in the host-wide directory, serializes the check and
// repair of rkt's isolation rules between concurrent pods.
const guardLockFile = "guard.lock"

// ensureGuard makes sure rkt's isolation rules (guardRules) are in
// place, in the firewall backend given: for iptables one iptables-save
// per address family checks them, and one iptables-restore puts back
// what is missing. It reports whether it changed anything.
func ensureGuard(ctx context.Context, hostDir, backend string) (bool, error) {
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return false, fmt.Errorf("set up rkt's isolation rules: %w", err)
	}
	lock := filepath.Join(hostDir, guardLockFile)
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, fmt.Errorf("set up rkt's isolation rules: open their lock: %w", err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("set up rkt's isolation rules: lock %s: %w", lock, err)
	}
	if backend == "nftables" {
		out, err := exec.CommandContext(ctx, "nft", "list", "table", "inet", masqTable).Output()
		if err == nil && bytes.Contains(out, []byte(guardSignature)) {
			return false, nil
		}
		if err := run(ctx, strings.NewReader(guardNft()), "nft", "-f", "-"); err != nil {
			return false, fmt.Errorf("set up rkt's isolation rules: %w", err)
		}
		return true, nil
	}
	// The two families are checked at once: each is an exec of its own.
	type result struct {
		changed bool
		err     error
	}
	v6done := make(chan result, 1)
	go func() {
		if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
			v6done <- result{} // no IPv6 on this host
			return
		}
		c, err := ensureGuardFamily(ctx, true)
		v6done <- result{c, err}
	}()
	changed, err := ensureGuardFamily(ctx, false)
	r6 := <-v6done
	if err == nil {
		err = r6.err
	}
	return changed || r6.changed, err
}

// ensureGuardFamily checks and repairs the rules of one address family.
func ensureGuardFamily(ctx context.Context, v6 bool) (bool, error) {
	save, restore := "iptables-save", "iptables-restore"
	if v6 {
		save, restore = "ip6tables-save", "ip6tables-restore"
	}
	out, err := exec.CommandContext(ctx, save).Output()
	if err != nil {
		return false, fmt.Errorf("set up rkt's isolation rules: %s: %w", save, err)
	}
	script := guardScript(parseGuardState(string(out)), guardRules(v6))
	if script == "" {
		return false, nil
	}
	if err := run(ctx, strings.NewReader(script), restore, "-w", "--noflush"); err != nil {
		return false, fmt.Errorf("set up rkt's isolation rules: %w: check that the host's iptables works (matches devgroup, rpfilter, conntrack, comment)", err)
	}
	return true, nil
}

// guardSignature is in the nftables guard's listing once it is there.
const guardSignature = "guard-forward"

// markHostIfaces puts the host-side interfaces of a network's result
// (those not in the pod's namespace) in the network's device group,
// unless an administrator gave one of them a group of their own.
func markHostIfaces(res *current.Result, group uint32) error {
	for _, ifc := range res.Interfaces {
		if ifc == nil || ifc.Sandbox != "" || ifc.Name == "" {
			continue
		}
		link, err := netlink.LinkByName(ifc.Name)
		if err != nil {
			return fmt.Errorf("find the host's interface %s of the pod: %w", ifc.Name, err)
		}
		if g := link.Attrs().Group; g == group || (g != 0 && !isRktGroup(g)) {
			continue
		}
		if err := netlink.LinkSetGroup(link, int(group)); err != nil {
			return fmt.Errorf("put the host's interface %s of the pod in device group 0x%x: %w", ifc.Name, group, err)
		}
	}
	return nil
}
