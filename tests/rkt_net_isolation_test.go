package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/stage1/stage1test"
	"github.com/rkt/rkt/tests/testutils"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The network isolation tests (docs/networking.md, "Isolation") attack
// the host the way a pod could: tests/rawpkt, run in a pod with the
// default capabilities (CAP_NET_RAW among them), writes hand-made
// Ethernet frames to the pod's gateway MAC, with any source and
// destination address. Every destination is a listener the test itself
// started: on the host's 127.0.0.1, on the host's address on the test's
// own pod links (the gateways), or in the network namespace of another
// of the test's pods. Each test also sends what must get through, so
// that it fails if the tool does not work.

// The built-in networks' gateways (host-local's first address).
const (
	defaultGW    = "172.16.28.1"
	restrictedGW = "172.31.0.1"
)

// netIsoEnv is a real-stage1 context whose image also holds /rawpkt.
type netIsoEnv struct {
	*realEnv
}

func newNetIsoEnv(t *testing.T) *netIsoEnv {
	t.Helper()
	// Restored last, once the pods are collected.
	hostNet := stage1test.SnapshotHostNet()
	t.Cleanup(hostNet.Restore)
	e := newRealEnv(t)
	raw, err := testutils.BuildStatic(e.dir, "rawpkt")
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := e.inspectACI(realImageName)
	a.Entries = append(a.Entries, testutils.File("rawpkt", 0o755, string(body)))
	e.img = e.writeImage("inspect-rawpkt.aci", a)
	return &netIsoEnv{e}
}

// sleeper starts a pod on net that sleeps, and returns it with its
// address.
func (e *netIsoEnv) sleeper(netFlag string, extra ...string) (*bgPod, string) {
	e.t.Helper()
	args := append([]string{netFlag}, extra...)
	args = append(args, e.img, "--exec=/inspect", "--", "--sleep=60s")
	bp := e.startReady(args...)
	return bp, e.podIP(bp.UUID)
}

// podIP is the pod's first address, from its net-info.json.
func (e *netIsoEnv) podIP(uuid string) string {
	e.t.Helper()
	nis, err := networking.LoadNetInfo(e.podDir(uuid))
	if err != nil || len(nis) == 0 || nis[0].IP == "" {
		e.t.Fatalf("pod %s has no address recorded: %v %+v", uuid, err, nis)
	}
	return nis[0].IP
}

// attack runs rawpkt in a pod on netFlag (with extra rkt run flags),
// sending through gw, and fails the test unless it sent everything.
func (e *netIsoEnv) attack(netFlag, gw string, sends ...string) {
	e.t.Helper()
	args := []string{netFlag, e.img, "--exec=/rawpkt", "--", "-gw", gw}
	r := e.run(append(args, sends...)...)
	if r.Exit != 0 || strings.Count(r.Stdout, "sent: ") != len(sends) {
		e.t.Fatalf("rawpkt did not send everything: %s", describeResult(args, r))
	}
}

// udpSink is a UDP listener of the test's that records the payloads it
// gets.
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  map[string]string // payload -> source address
}

func listenUDP(t *testing.T, network, addr string) *udpSink {
	t.Helper()
	c, err := net.ListenUDP(network, mustUDPAddr(t, network, addr))
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	s := &udpSink{conn: c, got: map[string]string{}}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got[string(buf[:n])] = from.String()
			s.mu.Unlock()
		}
	}()
	return s
}

func mustUDPAddr(t *testing.T, network, addr string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (s *udpSink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// has waits up to d for payload, and reports whether it came and from
// where.
func (s *udpSink) has(payload string, d time.Duration) (string, bool) {
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		from, ok := s.got[payload]
		s.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return from, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count is the number of payloads received that start with prefix.
func (s *udpSink) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p := range s.got {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// want fails the test unless payload came; mustNot unless it did not
// (the sends that must arrive are checked first, so a short wait
// suffices).
func (s *udpSink) want(t *testing.T, payload string) {
	t.Helper()
	if _, ok := s.has(payload, 3*time.Second); !ok {
		t.Errorf("%q did not arrive at %s: the test's packets do not get through at all", payload, s.conn.LocalAddr())
	}
}

func (s *udpSink) mustNot(t *testing.T, payload, what string) {
	t.Helper()
	if from, ok := s.has(payload, 300*time.Millisecond); ok {
		t.Errorf("%s: %q arrived at %s from %s", what, payload, s.conn.LocalAddr(), from)
	}
}

// listenUDPInPod starts a UDP listener of the test's in the network
// namespace of the pod's process 1.
func (e *netIsoEnv) listenUDPInPod(bp *bgPod) *udpSink {
	e.t.Helper()
	pid := e.podPid(bp.UUID, "pid")
	var s *udpSink
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The socket belongs to the namespace it is made in; the thread
		// goes back to the test's namespace afterwards (if it cannot, it
		// stays locked and dies with the goroutine).
		runtime.LockOSThread()
		var self, fd int
		if self, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return
		}
		defer unix.Close(self)
		if fd, err = unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return
		}
		defer unix.Close(fd)
		if err = unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return
		}
		s = listenUDP(e.t, "udp4", "0.0.0.0:0")
		if err = unix.Setns(self, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
	if err != nil {
		e.t.Fatalf("listen in pod %s: %v", bp.UUID, err)
	}
	return s
}

// TestNetNoLoopbackThroughPortForward: a pod with a --port (portmap turns
// route_localnet on for its veth) sends raw frames to the host's
// 127.0.0.1, where the test listens: nothing may arrive. The forward
// itself keeps working through 127.0.0.1 from the host.
func TestNetNoLoopbackThroughPortForward(t *testing.T) {
	e := newNetIsoEnv(t)
	loop := listenUDP(t, "udp4", "127.0.0.1:0")
	ctl := listenUDP(t, "udp4", "0.0.0.0:0")
	hostPort := freeTCPPort(t)
	script := fmt.Sprintf("/rawpkt -gw %s 'self>127.0.0.1:%d=to-loopback' 'self>%s:%d=control' && exec /inspect --serve-http=:80",
		defaultGW, loop.port(), defaultGW, ctl.port())
	args := append([]string{"--net=default", fmt.Sprintf("--port=%d:80", hostPort), e.img}, shExec(script)...)
	e.startReady(args[:len(args)-1]...)
	ctl.want(t, "control")
	loop.mustNot(t, "to-loopback", "a pod reached a listener on the host's 127.0.0.1")
	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
	if body != "rkt inspect" {
		t.Errorf("the forward through 127.0.0.1 answered %q, want %q", body, "rkt inspect")
	}
}

// TestNetNoSpoofing: a pod on the default network sends to the host and
// to another pod from the other pod's address and from an arbitrary one:
// nothing forged may arrive. Over IPv6 (the built-in networks are
// IPv4-only) the host takes nothing from the pod, from its own
// link-local address or a forged one.
func TestNetNoSpoofing(t *testing.T) {
	e := newNetIsoEnv(t)
	host4 := listenUDP(t, "udp4", "0.0.0.0:0")
	host6 := listenUDP(t, "udp6", "[::]:0")
	other, otherIP := e.sleeper("--net=default")
	inOther := e.listenUDPInPod(other)
	p4, p6, q := host4.port(), host6.port(), inOther.port()
	e.attack("--net=default", defaultGW,
		fmt.Sprintf("self>%s:%d=control", defaultGW, p4),
		fmt.Sprintf("%s>%s:%d=from-other-pod", otherIP, defaultGW, p4),
		fmt.Sprintf("10.99.0.1>%s:%d=from-anywhere", defaultGW, p4),
		fmt.Sprintf("self>%s:%d=control-fwd", otherIP, q),
		fmt.Sprintf("10.99.0.1>%s:%d=forged-fwd", otherIP, q),
		fmt.Sprintf("self>[ff02::1]:%d=own6", p6),
		fmt.Sprintf("[fd00:99::1]>[ff02::1]:%d=forged6", p6),
	)
	host4.want(t, "control")
	inOther.want(t, "control-fwd")

	host4.mustNot(t, "from-other-pod", "the host took a packet forged with another pod's address")
	host4.mustNot(t, "from-anywhere", "the host took a packet forged with 10.99.0.1")
	inOther.mustNot(t, "forged-fwd", "the host forwarded a forged packet to another pod")
	host6.mustNot(t, "own6", "the host took IPv6 from a pod of an IPv4-only built-in network")
	host6.mustNot(t, "forged6", "the host took an IPv6 packet forged with fd00:99::1")
}

// TestNetRestrictedIsHostOnly: a pod on default-restricted reaches its
// gateway, but neither a pod on default nor the host's address on
// another pod's link; and a pod on default does not reach a restricted
// pod.
func TestNetRestrictedIsHostOnly(t *testing.T) {
	e := newNetIsoEnv(t)
	host := listenUDP(t, "udp4", "0.0.0.0:0")
	def, defIP := e.sleeper("--net=default")
	inDef := e.listenUDPInPod(def)
	restricted, resIP := e.sleeper("--net=default-restricted")
	inRes := e.listenUDPInPod(restricted)
	p, q, r := host.port(), inDef.port(), inRes.port()
	e.attack("--net=default-restricted", restrictedGW,
		fmt.Sprintf("self>%s:%d=control", restrictedGW, p),
		fmt.Sprintf("self>%s:%d=restricted-to-default", defIP, q),
		fmt.Sprintf("self>%s:%d=restricted-to-host", defaultGW, p),
	)
	e.attack("--net=default", defaultGW,
		fmt.Sprintf("self>%s:%d=control-default", defIP, q),
		fmt.Sprintf("self>%s:%d=default-to-restricted", resIP, r),
	)
	host.want(t, "control")
	inDef.want(t, "control-default")
	inDef.mustNot(t, "restricted-to-default", "a default-restricted pod reached a pod on default")
	host.mustNot(t, "restricted-to-host", "a default-restricted pod reached the host at another address than its gateway")
	inRes.mustNot(t, "default-to-restricted", "a pod on default reached a default-restricted pod")
}

// TestNetPodConnLimit: a pod opening more flows than the host tracks for
// one pod (networking.PodConnLimit; UDP datagrams from as many source
// ports, to the test's listener on the pod's gateway) gets no more
// through.
func TestNetPodConnLimit(t *testing.T) {
	e := newNetIsoEnv(t)
	host := listenUDP(t, "udp4", "0.0.0.0:0")
	// Room for every datagram: the listener must not be what drops them.
	raw, err := host.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20) })
	n := networking.PodConnLimit + 1000
	e.attack("--net=default", defaultGW, fmt.Sprintf("self>%s:%d=flow*%d", defaultGW, host.port(), n))
	got, last := 0, -1
	for deadline := time.Now().Add(10 * time.Second); got != last && time.Now().Before(deadline); {
		last = got
		time.Sleep(300 * time.Millisecond)
		got = host.count("flow-")
	}
	t.Logf("%d of %d flows arrived", got, n)
	// The flows outlive the pod (30 s): they are the test's to remove, so
	// that a pod given the address next is not over the limit.
	if from, ok := host.has("flow-0", 0); ok {
		if a, err := net.ResolveUDPAddr("udp4", from); err == nil {
			f := &netlink.ConntrackFilter{}
			f.AddIP(netlink.ConntrackOrigSrcIP, a.IP)
			netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
		}
	}
	if got > networking.PodConnLimit || got < networking.PodConnLimit/2 {
		t.Errorf("%d of %d flows from one pod arrived: want at most %d (and most of those)", got, n, networking.PodConnLimit)
	}
}

// TestNetHostPortsExclusive: a host port forwarded to a running pod, or
// one a host process listens on, is refused to another pod (of another
// data directory too) with an error naming the holder; two rkt run
// racing for one port get it once; a killed pod's port is free again.
func TestNetHostPortsExclusive(t *testing.T) {
	e := newNetIsoEnv(t)
	e2 := newNetIsoEnv(t)
	port := freeTCPPort(t)
	first, _ := e.sleeper("--net=default", fmt.Sprintf("--port=%d:80", port))
	args := []string{"--net=default", fmt.Sprintf("--port=%d:81", port), e2.img, "--exec=/inspect", "--", "--sleep=60s"}
	r := e2.run(args...)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "already forwarded to pod "+first.UUID) {
		t.Errorf("a second pod (another data dir) on host port %d: want exit 254 naming pod %s\n%s", port, first.UUID, describeResult(args, r))
	}

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	args = []string{"--net=default", fmt.Sprintf("--port=%d:80", busy), e.img, "--exec=/inspect"}
	r = e.run(args...)
	if want := fmt.Sprintf("(pid %d) listening on 127.0.0.1:%d", os.Getpid(), busy); r.Exit != 254 || !strings.Contains(r.Stderr, want) {
		t.Errorf("a forward of a port the test listens on: want exit 254 and %q\n%s", want, describeResult(args, r))
	}

	// Two rkt processes starting at once: one gets the port.
	race := freeTCPPort(t)
	type outcome struct {
		r   testutils.Result
		env *netIsoEnv
	}
	results := make(chan outcome, 2)
	for _, env := range []*netIsoEnv{e, e2} {
		go func() {
			a := []string{"--net=default", fmt.Sprintf("--port=%d:80", race), env.img, "--exec=/inspect", "--", "--sleep=3s"}
			results <- outcome{env.run(a...), env}
		}()
	}
	var refused, ran int
	for i := 0; i < 2; i++ {
		o := <-results
		switch {
		case o.r.Exit == 254 && strings.Contains(o.r.Stderr, "already forwarded to pod"):
			refused++
		case o.r.Exit == 0:
			ran++
		default:
			t.Errorf("racing pod: unexpected result\nexit %d\nstderr: %s", o.r.Exit, o.r.Stderr)
		}
	}
	if refused != 1 || ran != 1 {
		t.Errorf("two pods racing for host port %d: %d ran, %d refused; want one each", race, ran, refused)
	}

	// A pod killed with SIGKILL no longer holds its port.
	if err := syscall.Kill(first.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	args = []string{"--net=default", fmt.Sprintf("--port=%d:80", port), e2.img, "--exec=/inspect"}
	if r := e2.run(args...); r.Exit != 0 {
		t.Errorf("the port of a killed pod is not free again:\n%s", describeResult(args, r))
	}
}

// TestNetSameIPTwoDataDirs: pods of two data directories on the default
// network get different addresses, and both are reachable.
func TestNetSameIPTwoDataDirs(t *testing.T) {
	e1 := newNetIsoEnv(t)
	e2 := newNetIsoEnv(t)
	serve := []string{"--net=default", "", "--exec=/inspect", "--", "--serve-http=:80", "--serve-http-body=pod"}
	var ips []string
	for i, e := range []*netIsoEnv{e1, e2} {
		serve[1] = e.img
		bp := e.startReady(serve...)
		ip := e.podIP(bp.UUID)
		ips = append(ips, ip)
		body := httpGet(t, "http://"+net.JoinHostPort(ip, "80")+"/")
		if body != "pod" {
			t.Errorf("data dir %d: pod %s at %s answered %q", i+1, bp.UUID, ip, body)
		}
	}
	if ips[0] == ips[1] {
		t.Errorf("pods of two data directories share the address %s", ips[0])
	}
	// Both still answer once both run.
	for _, ip := range ips {
		if body := httpGet(t, "http://"+net.JoinHostPort(ip, "80")+"/"); body != "pod" {
			t.Errorf("pod at %s answered %q once both ran", ip, body)
		}
	}
}

// httpGet returns the body of a GET of url (to a test pod or the test's
// own forward), "" on failure, retrying for a few seconds.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Logf("GET %s: %v", url, err)
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeTCPPort returns a TCP port nothing listens on now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, _ := strconv.Atoi(strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
	return p
}

// TestNetRefusesRangeTheHostUses: rkt run on a net.d network whose range
// overlaps a route of the host's (on a bridge the test makes, with a
// test address) exits 254 naming the route, and leaves no network.
func TestNetRefusesRangeTheHostUses(t *testing.T) {
	e := newNetIsoEnv(t)
	const dev = "rktovl1"
	exec.Command("ip", "link", "del", dev).Run()
	if out, err := exec.Command("ip", "link", "add", dev, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
	for _, c := range [][]string{{"addr", "add", "198.18.78.1/24", "dev", dev}, {"link", "set", dev, "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, out)
		}
	}
	netd := filepath.Join(e.LocalConfig, "net.d")
	os.MkdirAll(netd, 0o755)
	conf := `{"cniVersion":"1.0.0","name":"ovl","type":"ptp","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.78.0/24"}]]}}`
	if err := os.WriteFile(filepath.Join(netd, "ovl.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	uuid, r := e.runUUID("--net=ovl", e.img, "--exec=/inspect")
	if want := "its range 198.18.78.0/24 overlaps the host's route 198.18.78.0/24 dev " + dev; r.Exit != 254 || !strings.Contains(r.Stderr, want) {
		t.Errorf("want exit 254 and %q\nexit %d\nstderr: %s", want, r.Exit, r.Stderr)
	}
	if left := stage1test.NetTraces(uuid, e.Dir, nil); len(left) > 0 {
		t.Errorf("the refused pod left: %v", left)
	}
}
