package networking

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/rkt/rkt/tests/testutils"

	"github.com/rkt/rkt/pkg/testutil"
)

// The tests marked root use the real CNI plugins (built once per test
// binary by build-plugins.sh), real network namespaces, iptables and
// veths. They only ever contact 127.0.0.1 and addresses of pods they
// created themselves.

// podEnv makes the test binary act as a pod: the process that holds a
// network namespace, with an HTTP server on :8080 in it.
const podEnv = "RKT_NETWORKING_TEST_POD"

// podPort is where the test pods listen.
const podPort = 8080

// getEnv makes the test binary fetch a URL and print the body (run inside
// a pod's network namespace by testPod.wget).
const getEnv = "RKT_NETWORKING_TEST_GET"

func TestMain(m *testing.M) {
	if name := os.Getenv(podEnv); name != "" {
		podMain(name)
		return
	}
	if url := os.Getenv(getEnv); url != "" {
		body, err := httpGet(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(body)
		os.Exit(0)
	}
	hostNet := testutils.SnapshotHostNet()
	code := m.Run()
	if pluginsDir != "" {
		os.RemoveAll(pluginsDir)
		// ptp and bridge switch IP forwarding on, and the plugins leave
		// the chains and tables they share between pods: leave the host
		// as found.
		hostNet.Restore()
	}
	os.Exit(code)
}

// podMain serves "pod NAME" over HTTP on every address of its network
// namespace and says "ready" on stdout once it listens.
func podMain(name string) {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", podPort))
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pod %s", name)
	}))
}

var (
	podSeq      atomic.Uint32
	pluginsOnce sync.Once
	pluginsDir  string
	pluginsErr  error
)

// needRoot skips tests that need root and the real plugins, and returns
// the directory with the plugins.
func needRoot(t testing.TB) string {
	t.Helper()
	testutil.RequireRoot(t) // network namespaces, veths, iptables
	for _, tool := range []string{"iptables", "iptables-save", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	pluginsOnce.Do(func() {
		pluginsDir, pluginsErr = os.MkdirTemp("", "rkt-cni-plugins-")
		if pluginsErr != nil {
			return
		}
		out, err := exec.Command("sh", "build-plugins.sh", pluginsDir).CombinedOutput()
		if err != nil {
			pluginsErr = fmt.Errorf("build-plugins.sh: %v\n%s", err, out)
		}
	})
	if pluginsErr != nil {
		t.Fatal(pluginsErr)
	}
	return pluginsDir
}

// testPod is a process in a network namespace of its own.
type testPod struct {
	uuid   string
	cmd    *exec.Cmd
	netns  string
	podDir string
}

// startPod starts a pod process (CLONE_NEWNET, as stage1 clones the
// supervisor) and waits until it listens. It is killed at cleanup.
func startPod(t testing.TB, name string) *testPod {
	t.Helper()
	p, err := startPodE(t, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startPodE is startPod for goroutines other than the test's.
func startPodE(t testing.TB, name string) (*testPod, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), podEnv+"="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pod process: %w", err)
	}
	p := &testPod{
		uuid:   fmt.Sprintf("%08x-%04x-4000-8000-%012x", os.Getpid(), podSeq.Add(1)&0xffff, time.Now().UnixNano()&0xffffffffffff),
		cmd:    cmd,
		netns:  fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid),
		podDir: t.TempDir(),
	}
	t.Cleanup(p.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		return nil, fmt.Errorf("pod process did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return p, nil
}

// kill SIGKILLs the pod process (by PID) and reaps it.
func (p *testPod) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// in runs a command in the pod's network namespace.
func (p *testPod) in(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + p.netns, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// wget fetches url from inside the pod's network namespace.
func (p *testPod) wget(t testing.TB, url string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+p.netns, "--", os.Args[0])
	cmd.Env = append(os.Environ(), getEnv+"="+url)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// testConfig makes a Config with its own local config and lease
// directories, and writes the given net.d files.
func testConfig(t testing.TB, plugins string, netd map[string]string) Config {
	t.Helper()
	dir := t.TempDir()
	netDir := filepath.Join(dir, "local", "net.d")
	if err := os.MkdirAll(netDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range netd {
		if err := os.WriteFile(filepath.Join(netDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Config{
		LocalConfig: filepath.Join(dir, "local"),
		PluginDirs:  []string{netDir, plugins},
		// The host-wide leases, as rkt's: an address a concurrent pod of
		// another test or rkt holds is not handed out again.
		DataDir: LeaseDir(HostDir()),
		HostDir: filepath.Join(dir, "host"),
	}
}

// setupPod runs Setup for p and arranges for Teardown (and the removal of
// the host veths it knows of) at cleanup, whatever happens.
func setupPod(t testing.TB, p *testPod, cfg Config, reqs []Request, ports []PortForward) ([]NetInfo, error) {
	t.Helper()
	nis, err := Setup(context.Background(), p.uuid, p.podDir, p.netns, reqs, ports, cfg)
	if err == nil {
		veths := hostVeths(nis)
		t.Cleanup(func() {
			p.kill()
			Teardown(context.Background(), p.uuid, p.podDir, cfg)
			for _, v := range veths {
				exec.Command("ip", "link", "del", v).Run()
			}
		})
	}
	return nis, err
}

// hostVeths returns the host-side interfaces of the pod's networks.
func hostVeths(nis []NetInfo) []string {
	var out []string
	for _, ni := range nis {
		var r current.Result
		if json.Unmarshal(ni.Result, &r) != nil {
			continue
		}
		for _, i := range r.Interfaces {
			if i.Sandbox == "" && strings.HasPrefix(i.Name, "veth") {
				out = append(out, i.Name)
			}
		}
	}
	return out
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// linkGone waits up to 5 s for an interface to disappear: the host end of
// a killed pod's veth goes with the pod's network namespace, which the
// kernel destroys asynchronously after the pod's last process exited.
func linkGone(name string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for linkExists(name) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// httpGet fetches a URL from a test pod or 127.0.0.1, with a short timeout.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var counters = regexp.MustCompile(`\[\d+:\d+\]|counter packets \d+ bytes \d+`)

// firewallState is the host's iptables and nftables rules, without
// counters and timestamps.
func firewallState(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{{"iptables-save"}, {"nft", "list", "ruleset"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		out, err := exec.Command(c[0], c[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", c[0], err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			b.WriteString(counters.ReplaceAllString(l, "") + "\n")
		}
	}
	return b.String()
}

// links lists the host's network interfaces.
func links(t testing.TB) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range ifs {
		out = append(out, i.Name)
	}
	sort.Strings(out)
	return out
}

// leases lists host-local's lease files under dataDir; in the host-wide
// lease directory, only those of this test process's pods.
func leases(t testing.TB, dataDir string) []string {
	t.Helper()
	mine := fmt.Sprintf("%08x-", os.Getpid()) // testPod.uuid
	hostWide := strings.HasPrefix(dataDir, LeaseDir(HostDir()))
	var out []string
	filepath.Walk(dataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || net.ParseIP(info.Name()) == nil {
			return nil
		}
		if data, err := os.ReadFile(path); hostWide && (err != nil || !strings.HasPrefix(string(data), mine)) {
			return nil
		}
		out = append(out, path)
		return nil
	})
	return out
}

// diffLines returns the lines of b not in a and of a not in b.
func diffLines(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
