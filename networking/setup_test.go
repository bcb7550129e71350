package networking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// These tests run Setup and Teardown against testdata/fakecni, a shell
// script plugin that logs its calls: no root, no kernel state.

type fakeEnv struct {
	cfg    *Config
	log    string
	podDir string
	// netnsGone makes the pod's network namespace look gone (killed).
	netnsGone bool
	// masq records teardownIPMasq calls, shared ensureMasq calls.
	masq, shared []string
	// sharedErr makes ensureMasq fail.
	sharedErr error
}

func newFakeEnv(t *testing.T, nets map[string]string) *fakeEnv {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh for the fake plugin")
	}
	cfg := netdConfig(t, nets)
	plugins := t.TempDir()
	data, err := os.ReadFile("testdata/fakecni")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "fakecni"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// The built-in networks' ptp: fakecni, with an address.
	ptp := "#!/bin/sh\nsed 's|\"type\":\"ptp\"|\"type\":\"ptp\",\"ip\":\"172.16.28.2/24\"|' | exec \"$(dirname \"$0\")/fakecni\"\n"
	if err := os.WriteFile(filepath.Join(plugins, "ptp"), []byte(ptp), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.PluginDirs = []string{cfg.NetDir(), plugins}
	e := &fakeEnv{cfg: cfg, log: filepath.Join(t.TempDir(), "calls"), podDir: t.TempDir()}
	t.Setenv("FAKECNI_LOG", e.log)
	return e
}

func (e *fakeEnv) hooks() hooks {
	return hooks{
		loopbackUp: func(string) error { return nil },
		netnsID: func(string) string {
			if e.netnsGone {
				return ""
			}
			return "7:42"
		},
		teardownIPMasq: func(ni *NetInfo, podUUID, backend string) error {
			e.masq = append(e.masq, fmt.Sprintf("%s %s %s %v %s", ni.Name, ni.IfName, podUUID, ni.IPs, backend))
			return nil
		},
		ensureMasq: func(_ context.Context, lockDir string, r masqRule) (bool, error) {
			if lockDir != e.cfg.DataDir {
				return false, fmt.Errorf("lock in %s, want %s", lockDir, e.cfg.DataDir)
			}
			if e.sharedErr != nil {
				return false, e.sharedErr
			}
			e.shared = append(e.shared, fmt.Sprintf("%s %s %s", r.network, r.subnet, r.backend))
			// The call shows among the plugins' calls.
			f, err := os.OpenFile(e.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return false, err
			}
			defer f.Close()
			_, err = fmt.Fprintf(f, "MASQ %s\n", r.subnet)
			return len(e.shared) == 1, err
		},
	}
}

// calls returns the logged plugin calls, trimmed to the given fields.
func (e *fakeEnv) calls(t *testing.T, fields ...string) []string {
	t.Helper()
	data, err := os.ReadFile(e.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		keep := []string{f[0], f[1]}
		for _, x := range f[2:] {
			for _, want := range fields {
				if strings.HasPrefix(x, want+"=") && x != want+"=" {
					keep = append(keep, x)
				}
			}
		}
		out = append(out, strings.Join(keep, " "))
	}
	os.Remove(e.log)
	return out
}

func fakeNet(name, ip string, extra string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"%s","type":"fakecni","ip":"%s"%s}`, name, ip, extra)
}

const fakeUUID = "6f1ab5b1-8a1e-4a8e-9a51-3d0b9e8ef001"

func TestSetupRollsBackWhenALaterNetworkFails(t *testing.T) {
	e := newFakeEnv(t, map[string]string{
		"1.conf": fakeNet("one", "10.99.0.2/24", `,"ipMasq":true`),
		"2.conf": fakeNet("two", "10.98.0.2/24", ""),
		"3.conf": fakeNet("bad", "10.97.0.2/24", `,"failAdd":true`),
	})
	reqs, _, _, _ := ParseNetFlag("one,two:K=V,bad")
	_, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", reqs, nil, e.cfg, e.hooks())
	if err == nil || !strings.Contains(err.Error(), "network bad") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Setup error = %v, want one naming network bad and the plugin's message", err)
	}
	want := []string{"ADD eth0", "ADD eth1 args=K=V", "ADD eth2", "DEL eth2", "DEL eth1 args=K=V", "DEL eth0"}
	if got := e.calls(t, "args"); !reflect.DeepEqual(got, want) {
		t.Errorf("plugin calls:\n%s\nwant (rolled back in reverse):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(e.podDir, NetInfoFile)); !os.IsNotExist(err) {
		t.Errorf("net-info.json left after a rolled back Setup: %v", err)
	}
	if nis, err := LoadNetInfo(e.podDir); nis != nil || err != nil {
		t.Errorf("LoadNetInfo after rollback = %v, %v", nis, err)
	}
}

func TestSetupFailureOfFirstNetwork(t *testing.T) {
	e := newFakeEnv(t, map[string]string{"bad.conf": fakeNet("bad", "10.97.0.2/24", `,"failAdd":true`)})
	_, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: "bad"}, {Name: "default"}}, nil, e.cfg, e.hooks())
	if err == nil {
		t.Fatal("Setup succeeded")
	}
	if got, want := e.calls(t), []string{"ADD eth0", "DEL eth0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v (the failed network is deleted too, the default never added)", got, want)
	}
}

func TestSetupRecordsAndTeardownUndoes(t *testing.T) {
	e := newFakeEnv(t, map[string]string{
		"1.conf": fakeNet("one", "10.99.0.2/24", `,"ipMasq":true,"capabilities":{"portMappings":true}`),
		"2.conf": fakeNet("default-restricted", "10.98.0.2/24", ""),
	})
	ports := []PortForward{{HostPort: 8080, PodPort: 80, Protocol: "tcp"}}
	var logged []string
	e.cfg.Logf = func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	nis, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: "one", Args: [][2]string{{"IP", "10.99.0.2"}}}}, ports, e.cfg, e.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if len(nis) != 2 || nis[0].Name != "one" || nis[0].IP != "10.99.0.2" || nis[0].Mask != "255.255.255.0" ||
		nis[0].Gateway != "10.99.0.1" || nis[0].IfName != "eth0" || !reflect.DeepEqual(nis[0].Ports, ports) ||
		nis[1].Name != "default-restricted" || !nis[1].Auto || nis[1].IfName != "eth1" || nis[0].NetNSID != "7:42" {
		t.Fatalf("NetInfo = %+v", nis)
	}
	if len(logged) == 0 {
		t.Error("nothing logged through Config.Logf")
	}
	saved, err := LoadNetInfo(e.podDir)
	if err != nil || !reflect.DeepEqual(saved[0].IPs, []string{"10.99.0.2/24"}) || len(saved) != 2 || len(saved[0].Result) == 0 {
		t.Fatalf("net-info.json: %+v, %v", saved, err)
	}
	if d := DNSFromNets(saved); !reflect.DeepEqual(d.Nameservers, []string{"10.99.0.53"}) || !reflect.DeepEqual(d.Search, []string{"pod.test"}) {
		t.Errorf("DNS from the results: %+v", d)
	}
	if got, want := e.calls(t, "ports", "netns"), []string{
		"ADD eth0 netns=/proc/1/ns/net ports=yes", "ADD eth1 netns=/proc/1/ns/net ports=no",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("ADD calls %v, want %v", got, want)
	}

	// The pod still runs in the same namespace: DEL enters it, and the
	// plugins remove their own masquerading rules.
	if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks()); err != nil {
		t.Fatal(err)
	}
	if got, want := e.calls(t, "netns", "prev", "ports"), []string{
		"DEL eth1 netns=/proc/1/ns/net prev=yes ports=no", "DEL eth0 netns=/proc/1/ns/net prev=yes ports=yes",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("DEL calls %v, want %v", got, want)
	}
	if len(e.masq) != 0 {
		t.Errorf("masquerading removed by rkt while the namespace exists: %v", e.masq)
	}

	// Killed pod, libcni's cache gone: DEL without a namespace, with the
	// recorded result, and rkt removes the masquerading rules itself.
	// Teardown can be repeated.
	e.netnsGone = true
	os.RemoveAll(filepath.Join(e.podDir, cacheDirName))
	for i := 0; i < 2; i++ {
		if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks()); err != nil {
			t.Fatal(err)
		}
		if got, want := e.calls(t, "netns", "prev", "id"), []string{
			"DEL eth1 id=" + fakeUUID + " prev=yes", "DEL eth0 id=" + fakeUUID + " prev=yes",
		}; !reflect.DeepEqual(got, want) {
			t.Errorf("DEL calls %v, want %v", got, want)
		}
	}
	if want := "one eth0 " + fakeUUID + " [10.99.0.2/24] " + firewallBackend(); len(e.masq) != 2 || e.masq[0] != want {
		t.Errorf("masquerading teardown calls %v, want %q twice (only network one masquerades)", e.masq, want)
	}
}

func TestTeardownAfterInterruptedSetup(t *testing.T) {
	e := newFakeEnv(t, map[string]string{"1.conf": fakeNet("one", "10.99.0.2/24", `,"ipMasq":true,"ipam":{"type":"host-local","subnet":"10.99.0.0/24"}`)})
	nets, err := e.cfg.plan([]Request{{Name: "one"}, {Name: "default"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := nets[0].confList()
	if err != nil {
		t.Fatal(err)
	}
	// What Setup records before ADD; the crash came before the result.
	if err := writeNetInfo(e.podDir, []NetInfo{{Name: "one", IfName: "eth0", NetNS: "/proc/1/ns/net", NetNSID: "7:42", Config: l.Bytes}}); err != nil {
		t.Fatal(err)
	}
	leaseDir := filepath.Join(e.cfg.DataDir, "one")
	os.MkdirAll(leaseDir, 0o755)
	os.WriteFile(filepath.Join(leaseDir, "10.99.0.9"), []byte(fakeUUID+"\r\neth0"), 0o600)
	os.WriteFile(filepath.Join(leaseDir, "10.99.0.10"), []byte("another-pod\r\neth0"), 0o600)
	os.WriteFile(filepath.Join(leaseDir, "10.99.0.11"), []byte(fakeUUID+"\r\neth1"), 0o600)
	e.netnsGone = true
	if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks()); err != nil {
		t.Fatal(err)
	}
	if got := e.calls(t, "prev"); !reflect.DeepEqual(got, []string{"DEL eth0 prev=no"}) {
		t.Errorf("calls %v", got)
	}
	if want := []string{"one eth0 " + fakeUUID + " [10.99.0.9/24] " + firewallBackend()}; !reflect.DeepEqual(e.masq, want) {
		t.Errorf("masquerading teardown %v, want %v (address found from the lease)", e.masq, want)
	}
}

func TestTeardownWithoutNetworks(t *testing.T) {
	e := newFakeEnv(t, nil)
	if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks()); err != nil {
		t.Errorf("Teardown of a pod without net-info.json: %v", err)
	}
	os.WriteFile(filepath.Join(e.podDir, NetInfoFile), []byte("{"), 0o644)
	if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks()); err == nil {
		t.Error("Teardown with a broken net-info.json succeeded")
	}
}

func TestTeardownReportsFailuresAndGoesOn(t *testing.T) {
	e := newFakeEnv(t, map[string]string{
		"1.conf": fakeNet("one", "10.99.0.2/24", ""),
		"2.conf": fakeNet("two", "10.98.0.2/24", ""),
		"3.conf": fakeNet("default-restricted", "10.97.0.2/24", ""),
	})
	if _, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: "one"}, {Name: "two"}}, nil, e.cfg, e.hooks()); err != nil {
		t.Fatal(err)
	}
	e.calls(t)
	// Network two's plugin disappeared.
	nis, _ := LoadNetInfo(e.podDir)
	nis[1].Config = []byte(strings.Replace(string(nis[1].Config), "fakecni", "gonecni", 1))
	writeNetInfo(e.podDir, nis)
	err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, e.hooks())
	if err == nil || !strings.Contains(err.Error(), "network two") || !strings.Contains(err.Error(), "rkt gc") {
		t.Errorf("Teardown error = %v, want one naming network two", err)
	}
	if got := e.calls(t); !reflect.DeepEqual(got, []string{"DEL eth2", "DEL eth0"}) {
		t.Errorf("calls %v: the other networks must still be deleted", got)
	}
}

func TestSetupErrorsForUsers(t *testing.T) {
	e := newFakeEnv(t, map[string]string{"m.conf": fakeNet("missing", "", `,"type":"nosuchplugin"`)})
	// (The second "type" wins in Go's JSON decoding.)
	_, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: "missing"}, {Name: "default"}}, nil, e.cfg, e.hooks())
	if !errors.Is(err, ErrPluginNotFound) || !strings.Contains(err.Error(), "nosuchplugin") {
		t.Errorf("missing plugin: %v", err)
	}
	if _, err := setup(context.Background(), fakeUUID, e.podDir, "", []Request{{Name: "default"}}, nil, e.cfg, e.hooks()); err == nil {
		t.Error("Setup without a network namespace succeeded")
	}
}

func TestExplain(t *testing.T) {
	cfg := netdConfig(t, map[string]string{"n.conf": `{"cniVersion":"1.0.0","name":"n","type":"ptp","ipam":{"type":"host-local","subnet":"10.44.0.0/30"}}`})
	nets, err := cfg.plan([]Request{{Name: "n", Args: [][2]string{{"IP", "10.44.0.2"}}}, {Name: "default"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := nets[0]
	os.MkdirAll(n.leaseDir(), 0o755)
	os.WriteFile(filepath.Join(n.leaseDir(), "10.44.0.2"), []byte("other-pod\r\neth0"), 0o600)
	os.WriteFile(filepath.Join(n.leaseDir(), "lock"), nil, 0o600)

	err = explain(n, fakeUUID, errors.New(`plugin type="ptp" name="n" failed (add): failed to allocate for range 0: no IP addresses available in range set: 10.44.0.1-10.44.0.2`))
	if !errors.Is(err, ErrAddressExhausted) || !strings.Contains(err.Error(), "no free address in 10.44.0.0/30 (1 pods use it") || !strings.Contains(err.Error(), "rkt gc") {
		t.Errorf("exhausted: %v", err)
	}
	err = explain(n, fakeUUID, errors.New(`failed to allocate for range 0: requested IP address 10.44.0.2 is not available in range set 10.44.0.1-10.44.0.2`))
	if !errors.Is(err, ErrAddressUnavailable) || !strings.Contains(err.Error(), "IP=10.44.0.2 is used by pod other-pod") {
		t.Errorf("address in use: %v", err)
	}
	n.args = [][2]string{{"IP", "10.45.0.2"}}
	err = explain(n, fakeUUID, errors.New(`requested IP address 10.45.0.2 is not available in range set 10.44.0.1-10.44.0.2`))
	if !errors.Is(err, ErrAddressUnavailable) || !strings.Contains(err.Error(), "outside the network's range 10.44.0.0/30") {
		t.Errorf("address out of range: %v", err)
	}
	other := errors.New("something else")
	if err := explain(n, fakeUUID, other); !errors.Is(err, other) || !strings.Contains(err.Error(), "network n (") {
		t.Errorf("other errors are wrapped with the network: %v", err)
	}
}

func TestRollbackWhenTheNamespaceVanished(t *testing.T) {
	e := newFakeEnv(t, map[string]string{
		"1.conf": fakeNet("one", "10.99.0.2/24", `,"ipMasq":true`),
		"2.conf": fakeNet("bad", "10.97.0.2/24", `,"failAdd":true`),
	})
	h := e.hooks()
	calls := 0
	h.netnsID = func(string) string {
		// The pod's first process dies after Setup looked at its namespace.
		calls++
		if calls > 1 {
			return ""
		}
		return "7:42"
	}
	if _, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: "one"}, {Name: "bad"}}, nil, e.cfg, h); err == nil {
		t.Fatal("Setup succeeded")
	}
	if got, want := e.calls(t, "netns"), []string{"ADD eth0 netns=/proc/1/ns/net", "ADD eth1 netns=/proc/1/ns/net", "DEL eth1", "DEL eth0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v (DEL without the vanished namespace)", got, want)
	}
	if want := []string{"one eth0 " + fakeUUID + " [10.99.0.2/24] " + firewallBackend()}; !reflect.DeepEqual(e.masq, want) {
		t.Errorf("masquerading teardown %v, want %v", e.masq, want)
	}
}

// TestInProcessOnlyForBuiltins checks which plugin calls are offered to
// the in-process hook: the built-in networks' (ADD, DEL and the chained
// portmap's, which it leaves to the plugin), never a net.d network's,
// not even one named default; and that a call it handles does not exec.
func TestInProcessOnlyForBuiltins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		netd  map[string]string
		reqs  string
		ports []PortForward
		want  []string
	}{
		{"built-in default with a port", nil, "default", []PortForward{{HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
			[]string{"ptp ADD default", "portmap ADD default", "portmap DEL default", "ptp DEL default"}},
		{"net.d network and default-restricted", map[string]string{"1.conf": fakeNet("one", "10.99.0.2/24", "")}, "one", nil,
			[]string{"ptp ADD default-restricted", "ptp DEL default-restricted"}},
		{"net.d network named default", map[string]string{"d.conf": fakeNet("default", "10.99.0.2/24", "")}, "default", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t, tc.netd)
			portmap := "#!/bin/sh\nsed 's|\"type\":\"portmap\"|\"type\":\"portmap\",\"ip\":\"172.16.28.2/24\"|' | exec \"$(dirname \"$0\")/fakecni\"\n"
			if err := os.WriteFile(filepath.Join(e.cfg.PluginDirs[1], "portmap"), []byte(portmap), 0o755); err != nil {
				t.Fatal(err)
			}
			h := e.hooks()
			var offered []string
			h.inProcess = func(_ context.Context, path string, stdin []byte, env []string) ([]byte, bool, error) {
				var c struct{ Name string }
				if err := json.Unmarshal(stdin, &c); err != nil {
					t.Fatal(err)
				}
				offered = append(offered, filepath.Base(path)+" "+cniVar(env, "CNI_COMMAND")+" "+c.Name)
				return nil, false, nil
			}
			reqs, _, _, _ := ParseNetFlag(tc.reqs)
			if _, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", reqs, tc.ports, e.cfg, h); err != nil {
				t.Fatal(err)
			}
			if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, h); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(offered, tc.want) {
				t.Errorf("offered to the in-process hook:\n%s\nwant:\n%s", strings.Join(offered, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	// A call the hook handles is not exec'd, and its output is the result.
	e := newFakeEnv(t, nil)
	h := e.hooks()
	h.inProcess = func(_ context.Context, _ string, _ []byte, env []string) ([]byte, bool, error) {
		if cniVar(env, "CNI_COMMAND") == "DEL" {
			return nil, true, nil
		}
		return []byte(`{"cniVersion":"1.0.0","ips":[{"address":"172.16.28.9/24","gateway":"172.16.28.1"}]}`), true, nil
	}
	nis, err := setup(context.Background(), fakeUUID, e.podDir, "/proc/1/ns/net", []Request{{Name: NetDefault}}, nil, e.cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(nis) != 1 || nis[0].IP != "172.16.28.9" {
		t.Errorf("NetInfo %+v, want the in-process result's address", nis)
	}
	if err := teardown(context.Background(), fakeUUID, e.podDir, e.cfg, h); err != nil {
		t.Fatal(err)
	}
	if got := e.calls(t); !reflect.DeepEqual(got, []string{"MASQ 172.16.28.0/24"}) {
		t.Errorf("plugin calls %v, want none exec'd", got)
	}
}
