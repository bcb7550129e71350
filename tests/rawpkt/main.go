// Command rawpkt is the network-isolation tests' attacker: run inside a
// pod (which has CAP_NET_RAW by default), it writes hand-made Ethernet
// frames carrying UDP datagrams straight to the pod's interface with an
// AF_PACKET socket, bypassing the pod's routes and source addresses, to
// the MAC address of the pod's gateway (the host's end of the link). It
// is static (CGO_ENABLED=0) and needs nothing from its image.
//
//	rawpkt -gw GATEWAY [-iface eth0] SEND...
//
// Each SEND is SRC>DST:PORT=PAYLOAD (IPv6 addresses in brackets:
// [fe80::1]>[ff02::1]:9=x); SRC "self" is the interface's own address of
// DST's family (for IPv6 its link-local one). Each frame is sent three
// times, 20 ms apart. PAYLOAD*N sends N datagrams instead, once each,
// from source ports 20000, 20001, ... (N flows), with payloads
// PAYLOAD-0, PAYLOAD-1, ... The gateway's MAC is found by sending one ordinary
// UDP datagram to GATEWAY port 9 (discard) and reading the neighbour
// table. It prints "sent: SEND" per SEND, or "rawpkt: ..." on stderr
// and exits 1.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	iface := flag.String("iface", "eth0", "the pod's interface")
	gw := flag.String("gw", "", "the pod's gateway (IPv4)")
	flag.Parse()
	if err := run(*iface, *gw, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "rawpkt:", err)
		os.Exit(1)
	}
}

func run(ifName, gw string, sends []string) error {
	ifc, err := net.InterfaceByName(ifName)
	if err != nil {
		return err
	}
	gwMAC, err := gatewayMAC(gw)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer syscall.Close(fd)
	addr := &syscall.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
	copy(addr.Addr[:], gwMAC)
	for _, s := range sends {
		if base, nStr, ok := strings.Cut(s, "*"); ok {
			var n int
			if _, err := fmt.Sscan(nStr, &n); err != nil || n < 1 || n > 40000 {
				return fmt.Errorf("%s: bad count", s)
			}
			for i := 0; i < n; i++ {
				frame, err := buildFrame(ifc, gwMAC, fmt.Sprintf("%s-%d", base, i), uint16(20000+i))
				if err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
				if err := syscall.Sendto(fd, frame, 0, addr); err != nil {
					return fmt.Errorf("send %s: %w", s, err)
				}
			}
			fmt.Println("sent:", s)
			continue
		}
		frame, err := buildFrame(ifc, gwMAC, s, 40000)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		for i := 0; i < 3; i++ {
			if err := syscall.Sendto(fd, frame, 0, addr); err != nil {
				return fmt.Errorf("send %s: %w", s, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		fmt.Println("sent:", s)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// gatewayMAC makes the kernel resolve the gateway, then reads its MAC
// from /proc/net/arp.
func gatewayMAC(gw string) (net.HardwareAddr, error) {
	if net.ParseIP(gw).To4() == nil {
		return nil, fmt.Errorf("-gw %q: give the pod's IPv4 gateway", gw)
	}
	if c, err := net.Dial("udp4", net.JoinHostPort(gw, "9")); err == nil {
		c.Write([]byte("rawpkt"))
		c.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile("/proc/net/arp")
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && f[0] == gw && f[2] == "0x2" {
				return net.ParseMAC(f[3])
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("no MAC address for the gateway %s", gw)
}

// buildFrame makes the Ethernet frame of one SEND.
func buildFrame(ifc *net.Interface, dstMAC net.HardwareAddr, send string, srcPort uint16) ([]byte, error) {
	route, payload, ok := strings.Cut(send, "=")
	if !ok {
		return nil, errors.New("want SRC>DST:PORT=PAYLOAD")
	}
	srcS, dstS, ok := strings.Cut(route, ">")
	if !ok {
		return nil, errors.New("want SRC>DST:PORT=PAYLOAD")
	}
	host, portS, err := net.SplitHostPort(dstS)
	if err != nil {
		return nil, err
	}
	dst := net.ParseIP(host)
	var port uint16
	if _, err := fmt.Sscan(portS, &port); err != nil || dst == nil {
		return nil, fmt.Errorf("bad destination %q", dstS)
	}
	v6 := dst.To4() == nil
	src := net.ParseIP(strings.Trim(srcS, "[]"))
	if srcS == "self" {
		if src, err = ownAddr(ifc, v6); err != nil {
			return nil, err
		}
	}
	if src == nil || (src.To4() == nil) != v6 {
		return nil, fmt.Errorf("bad source %q", srcS)
	}
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], srcPort)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	var ip []byte
	ethType := uint16(0x0800)
	if !v6 {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip[8] = 64
		ip[9] = syscall.IPPROTO_UDP
		copy(ip[12:], src.To4())
		copy(ip[16:], dst.To4())
		binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	} else {
		ethType = 0x86dd
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
		ip[6] = syscall.IPPROTO_UDP
		ip[7] = 64
		copy(ip[8:], src.To16())
		copy(ip[24:], dst.To16())
		// The UDP checksum is mandatory over IPv6: pseudo-header first.
		sum := partial(ip[8:40], 0) + uint32(len(udp)) + syscall.IPPROTO_UDP
		cs := checksum(udp, sum)
		if cs == 0 {
			cs = 0xffff
		}
		binary.BigEndian.PutUint16(udp[6:], cs)
	}
	frame := make([]byte, 0, 14+len(ip)+len(udp))
	frame = append(frame, dstMAC...)
	frame = append(frame, ifc.HardwareAddr...)
	frame = binary.BigEndian.AppendUint16(frame, ethType)
	frame = append(frame, ip...)
	return append(frame, udp...), nil
}

func partial(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func checksum(b []byte, sum uint32) uint16 {
	sum = partial(b, sum)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// ownAddr is the interface's IPv4 address, or its IPv6 link-local one.
func ownAddr(ifc *net.Interface, v6 bool) (net.IP, error) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if !v6 && ipn.IP.To4() != nil {
				return ipn.IP.To4(), nil
			}
			if v6 && ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP, nil
			}
		}
		time.Sleep(20 * time.Millisecond) // IPv6 link-local comes after DAD
	}
	return nil, fmt.Errorf("%s has no address of that family", ifc.Name)
}
