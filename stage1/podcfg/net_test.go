package podcfg

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rkt/rkt/networking"
)

func TestParseRunArgsNet(t *testing.T) {
	for _, c := range []struct {
		args               []string
		host, none, contnd bool
		nets               string
	}{
		{nil, false, false, true, "default"},
		{[]string{"--net=host"}, true, false, false, ""},
		{[]string{"--net=none"}, false, true, false, ""},
		{[]string{"--net=default-restricted"}, false, false, true, "default-restricted"},
		{[]string{"--net=a,b:IP=10.1.2.3;K=V"}, false, false, true, "a b:IP=10.1.2.3;K=V"},
	} {
		o := opts(t, c.args...)
		var names []string
		for _, r := range o.Networks {
			names = append(names, r.String())
		}
		if o.NetHost() != c.host || o.NetNone() != c.none || o.NetContained() != c.contnd || strings.Join(names, " ") != c.nets {
			t.Errorf("%q: host %v none %v contained %v networks %q", c.args, o.NetHost(), o.NetNone(), o.NetContained(), names)
		}
	}
	for _, bad := range []string{"--net=host,default", "--net=a,a", "--net=a:IP=x", "--net=bad/name"} {
		if _, err := ParseRunArgs([]string{bad, "u"}, io.Discard); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestDataDir(t *testing.T) {
	for pod, want := range map[string]string{
		"/var/lib/rkt/pods/run/u1":            "/var/lib/rkt",
		"/var/lib/rkt/pods/exited-garbage/u1": "/var/lib/rkt",
		"/d/pods/garbage/u1/":                 "/d",
	} {
		if got, err := DataDir(pod); err != nil || got != want {
			t.Errorf("DataDir(%s) = %q, %v; want %q", pod, got, err, want)
		}
	}
	for _, bad := range []string{"/tmp/u1", "relative/pods/run/u1", "/x/run/u1"} {
		if got, err := DataDir(bad); err == nil {
			t.Errorf("DataDir(%s) = %q, want an error", bad, got)
		}
	}
}

func TestNetConfig(t *testing.T) {
	data := t.TempDir()
	pod := filepath.Join(data, "pods", "run", "u1")
	os.MkdirAll(filepath.Join(pod, "stage1"), 0o755)
	logged := false
	cfg, err := NetConfig(pod, "/etc/rkt", func(string, ...any) { logged = true })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LocalConfig != "/etc/rkt" || cfg.DataDir != networking.LeaseDir(networking.HostDir()) || cfg.HostDir != networking.HostDir() {
		t.Errorf("config %+v", cfg)
	}
	if want := []string{"/etc/rkt/net.d", "/usr/lib/rkt/plugins/net"}; !reflect.DeepEqual(cfg.PluginDirs, want) {
		t.Errorf("without rootfs-path: plugin dirs %q, want %q", cfg.PluginDirs, want)
	}
	cfg.Logf("x")
	if !logged {
		t.Error("Logf is not the given logger")
	}
	os.WriteFile(filepath.Join(pod, "stage1", "rootfs-path"), []byte("/var/lib/rkt/cas/tree/s1/rootfs\n"), 0o644)
	cfg, err = NetConfig(pod, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/usr/lib/rkt/plugins/net", "/var/lib/rkt/cas/tree/s1/rootfs/usr/lib/rkt/plugins/net"}; !reflect.DeepEqual(cfg.PluginDirs, want) {
		t.Errorf("plugin dirs %q, want %q", cfg.PluginDirs, want)
	}
	if _, err := NetConfig("/tmp/not-a-pod-dir", "", nil); err == nil {
		t.Error("a pod directory outside <data dir>/pods/<phase>/ accepted")
	}
}

// podWithPorts is a pod whose app's image names the port "http" (8080/tcp).
const podWithPorts = `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[
 {"name":"a","image":{"id":"sha512-0000000000000000000000000000000000000000000000000000000000000000"},"app":{"exec":["/a"],"user":"0","group":"0"}}],
 "ports":[%s]}`

func TestLoadPorts(t *testing.T) {
	load := func(ports string, args ...string) (*Pod, error) {
		dir := writePod(t, strings.Replace(podWithPorts, "%s", ports, 1), nil)
		// The image manifest names a port.
		im := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/a","app":{"exec":["/a"],"user":"0","group":"0","ports":[{"name":"http","protocol":"TCP","port":8080}]}}`
		if err := os.WriteFile(filepath.Join(dir, AppManifest("a")), []byte(im), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load(context.Background(), dir, opts(t, args...))
	}
	p, err := load(`{"name":"http","hostPort":18080,"hostIP":"127.0.0.1","podPort":{"name":"http","protocol":"udp","port":53}},
		{"name":"http","hostPort":18081}`, "--net=default")
	if err != nil {
		t.Fatal(err)
	}
	want := []networking.PortForward{
		{Name: "http", Protocol: "udp", PodPort: 53, HostPort: 18080, HostIP: "127.0.0.1"},
		{Name: "http", Protocol: "tcp", PodPort: 8080, HostPort: 18081},
	}
	if !reflect.DeepEqual(p.Ports, want) {
		t.Errorf("ports %+v\nwant %+v", p.Ports, want)
	}
	if _, err := load(`{"name":"http","hostPort":18080}`, "--net=host"); err == nil || !strings.Contains(err.Error(), "--net=default") {
		t.Errorf("ports with --net=host: %v", err)
	}
	if _, err := load(`{"name":"other","hostPort":18080}`, "--net=default"); err == nil || !strings.Contains(err.Error(), "other") {
		t.Errorf("a port no image names: %v", err)
	}
	if _, err := load(`{"name":"x","hostPort":18080,"podPort":{"name":"x","protocol":"sctp","port":9}}`, "--net=default"); err == nil || !strings.Contains(err.Error(), "sctp") {
		t.Errorf("sctp: %v", err)
	}
}
