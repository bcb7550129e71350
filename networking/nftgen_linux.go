package networking

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// nftGeneration returns the generation of the host's nftables ruleset,
// which the kernel bumps at every change of any table (iptables-nft
// rules included): one netlink request, no exec. A check of the
// isolation rules done at generation g still holds while the generation
// is g.
func nftGeneration() (uint32, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	// nlmsghdr, then nfgenmsg (family, version, resource id).
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1)
	req[16] = unix.AF_UNSPEC
	req[17] = unix.NFNETLINK_V0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("nftables generation: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			if len(m.Data) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return 0, fmt.Errorf("nftables generation: %w", unix.Errno(-e))
				}
			}
			continue
		}
		if len(m.Data) < 4 {
			continue
		}
		// The attributes: length, type, value, each padded to 4 bytes.
		for b := m.Data[4:]; len(b) >= 4; {
			l, typ := int(binary.NativeEndian.Uint16(b)), binary.NativeEndian.Uint16(b[2:])&^unix.NLA_F_NESTED
			if l < 4 || l > len(b) {
				break
			}
			if typ == unix.NFTA_GEN_ID && l >= 8 {
				return binary.BigEndian.Uint32(b[4:8]), nil
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
	return 0, errors.New("nftables generation: no answer")
}
