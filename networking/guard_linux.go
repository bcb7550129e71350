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

// guardCacheFile, beside it, records the nftables generation at which
// the last check found the rules in place, and what iptables-save
// printed then.
const guardCacheFile = "guard.checked"

// ensureGuard makes sure rkt's isolation rules (guardRules) are in
// place, in the firewall backend given: for iptables one iptables-save
// checks them, and one iptables-restore puts back what is missing. It
// reports whether it changed anything, and returns what iptables-save
// printed (the shared masquerading rule is looked for in it).
func ensureGuard(ctx context.Context, hostDir, backend string) (bool, string, error) {
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return false, "", fmt.Errorf("set up rkt's isolation rules: %w", err)
	}
	lock := filepath.Join(hostDir, guardLockFile)
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, "", fmt.Errorf("set up rkt's isolation rules: open their lock: %w", err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return false, "", fmt.Errorf("set up rkt's isolation rules: lock %s: %w", lock, err)
	}
	if backend == "nftables" {
		out, err := exec.CommandContext(ctx, "nft", "list", "table", "inet", masqTable).Output()
		if err == nil && bytes.Contains(out, []byte(guardSignature)) {
			return false, "", nil
		}
		if err := run(ctx, strings.NewReader(guardNft()), "nft", "-f", "-"); err != nil {
			return false, "", fmt.Errorf("set up rkt's isolation rules: %w", err)
		}
		return true, "", nil
	}
	// With iptables-nft, a check stays good while the ruleset's
	// generation does not move: no exec at all then.
	cache := filepath.Join(hostDir, guardCacheFile)
	gen, genErr := nftGeneration()
	if genErr == nil {
		if data, err := os.ReadFile(cache); err == nil {
			if head, save, ok := strings.Cut(string(data), "\n"); ok && head == fmt.Sprintf("nft-generation %d", gen) {
				return false, save, nil
			}
		}
	}
	out, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return false, "", fmt.Errorf("set up rkt's isolation rules: iptables-save: %w", err)
	}
	script := guardScript(parseGuardState(string(out)), guardRules())
	if script == "" {
		first, _, _ := strings.Cut(string(out), "\n")
		if genErr == nil && strings.Contains(first, "(nf_tables)") {
			// The generation was read before the save: any change since
			// moves it, and the next check is a full one.
			os.WriteFile(cache, []byte(fmt.Sprintf("nft-generation %d\n%s", gen, out)), 0o600)
		}
		return false, string(out), nil
	}
	os.Remove(cache)
	if err := run(ctx, strings.NewReader(script), "iptables-restore", "-w", "--noflush"); err != nil {
		return false, "", fmt.Errorf("set up rkt's isolation rules: %w: check that the host's iptables works (matches devgroup, rpfilter, conntrack, connlimit, comment)", err)
	}
	return true, string(out), nil
}

// guardSignature is in the nftables guard's listing once it is there.
const guardSignature = "guard-forward"

// markHostIfaces puts the host-side interfaces of a network's result
// (those not in the pod's namespace) in the network's device group,
// unless an administrator gave one of them a group of their own. On the
// built-in networks (IPv4-only) it also turns IPv6 off on them: the host
// then takes no IPv6 from their pods, forged or not, and forwards none
// to them.
func markHostIfaces(res *current.Result, group uint32) error {
	for _, ifc := range res.Interfaces {
		if ifc == nil || ifc.Sandbox != "" || ifc.Name == "" {
			continue
		}
		link, err := netlink.LinkByName(ifc.Name)
		if err != nil {
			return fmt.Errorf("find the host's interface %s of the pod: %w", ifc.Name, err)
		}
		if group&^1 == groupBuiltin {
			sysctl := filepath.Join("/proc/sys/net/ipv6/conf", ifc.Name, "disable_ipv6")
			if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("turn IPv6 off on the host's interface %s of the pod: %w", ifc.Name, err)
			}
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
