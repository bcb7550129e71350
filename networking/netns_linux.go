package networking

import (
	"errors"
	"fmt"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils"
	"golang.org/x/sys/unix"
)

// loopbackUp brings lo up in the network namespace at netnsPath (CNI's
// loopback plugin would cost an exec for one ioctl).
func loopbackUp(netnsPath string) error {
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("read its flags: %w", err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	})
	if err != nil {
		return fmt.Errorf("bring lo up in the pod's network namespace %s: %w", netnsPath, err)
	}
	return nil
}

// netnsID identifies the network namespace at path (device and inode), or
// returns "" when there is none.
func netnsID(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// teardownIPMasq removes the masquerading rules ptp or bridge made for
// the pod's addresses on a network, with the plugins' own code: in
// iptables only when that is the backend they used (backend, as
// masqBackend found it), else in iptables and nftables both (the
// plugins' nftables teardown alone is not exported).
func teardownIPMasq(ni *NetInfo, podUUID, backend string) error {
	ipns := ni.ipNets()
	if len(ipns) == 0 {
		return nil
	}
	var err error
	if backend == "iptables" {
		chain, comment := utils.FormatChainName(ni.Name, podUUID), utils.FormatComment(ni.Name, podUUID)
		var errs []error
		for _, ipn := range ipns {
			// Deprecated only in favour of the function that also
			// clears nftables, which is the pass this avoids.
			errs = append(errs, ip.TeardownIPMasq(ipn, chain, comment)) //nolint:staticcheck
		}
		err = errors.Join(errs...)
	} else {
		err = ip.TeardownIPMasqForNetworks(ipns, ni.Name, ni.IfName, podUUID)
	}
	if err != nil {
		return fmt.Errorf("remove the masquerading rules of %s: %w", ni.IPs, err)
	}
	return nil
}
