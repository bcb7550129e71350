package podcfg

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/stage2"
)

// writePod writes a pod directory with the given manifest JSON and one
// image manifest and lowerdirs file per app.
func writePod(t *testing.T, podJSON string, imageAnnotations map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pod"), []byte(podJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	var pm schema.PodManifest
	if err := pm.UnmarshalJSON([]byte(podJSON)); err != nil {
		t.Fatalf("test pod manifest: %v", err)
	}
	for _, ra := range pm.Apps {
		ad := filepath.Join(dir, "appsinfo", ra.Name.String())
		if err := os.MkdirAll(ad, 0o755); err != nil {
			t.Fatal(err)
		}
		im := schema.BlankImageManifest()
		im.Name = "example.com/" + types.ACIdentifier(ra.Name.String())
		for k, v := range imageAnnotations {
			im.Annotations.Set(types.ACIdentifier(k), v)
		}
		data, err := json.Marshal(im)
		if err != nil {
			t.Fatal(err)
		}
		lower := filepath.Join(dir, "tree-"+ra.Name.String())
		os.MkdirAll(lower, 0o755)
		for _, f := range []struct{ name, body string }{{"manifest", string(data)}, {"lowerdirs", lower + "\n"}} {
			if err := os.WriteFile(filepath.Join(ad, f.name), []byte(f.body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func opts(t *testing.T, args ...string) *Options {
	t.Helper()
	o, err := ParseRunArgs(append(args, "1b4e28ba-2fa1-11d2-883f-0016d3cca427"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

const twoApps = `{"acVersion":"0.8.11","acKind":"PodManifest",
 "apps":[
  {"name":"web","image":{"id":"sha512-aaaa"},
   "app":{"exec":["/inspect","--print-msg=hi"],"user":"1000","group":"1000","workingDirectory":"/srv",
     "environment":[{"name":"FOO","value":"bar"}],
     "isolators":[
       {"name":"resource/cpu","value":{"limit":"750m"}},
       {"name":"resource/memory","value":{"limit":"128Mi"}},
       {"name":"os/linux/cpu-shares","value":512},
       {"name":"os/linux/oom-score-adj","value":100},
       {"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_NET_RAW","CAP_MKNOD"]}},
       {"name":"os/linux/seccomp-retain-set","value":{"set":["@docker/default-whitelist"],"errno":"ENOTSUP"}},
       {"name":"os/linux/no-new-privileges","value":true}]},
   "readOnlyRootFS":true,
   "mounts":[{"volume":"data","path":"/data"},{"volume":"scratch","path":"/scratch"}],
   "annotations":[{"name":"rkt.dev/pids-limit","value":"100"}]},
  {"name":"db","image":{"id":"sha512-bbbb"},
   "app":{"exec":["/bin/sh"],"user":"0","group":"0",
     "isolators":[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_ADMIN"]}}]}}],
 "volumes":[
  {"name":"data","kind":"host","source":"/srv/data","readOnly":true},
  {"name":"scratch","kind":"empty","mode":"1777","uid":1000,"gid":100}]}`

func TestLoad(t *testing.T) {
	dir := writePod(t, twoApps, map[string]string{NotifyAnnotation: "true"})
	p, err := Load(context.Background(), dir, opts(t, "--net=none", "--hostname=h1"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Hostname != "h1" || len(p.Apps) != 2 {
		t.Fatalf("pod = %+v", p)
	}
	web, db := p.Apps[0], p.Apps[1]
	if !web.SupportsNotify {
		t.Error("notify annotation of the image ignored")
	}
	l := web.Limits
	if l.CPUMilli != 750 || l.MemoryBytes != 128<<20 || l.CPUShares != 512 || l.PidsMax != 100 || l.PidsMaxIsDefault {
		t.Errorf("web limits = %+v", l)
	}
	if db.Limits.PidsMax != DefaultPidsLimit || !db.Limits.PidsMaxIsDefault {
		t.Errorf("db pids limit = %+v", db.Limits)
	}
	w := web.Launch
	if w.Root != filepath.Join(dir, "stage1/rootfs/opt/stage2/web/rootfs") || w.UpperDir != filepath.Join(dir, "overlay/web/upper") {
		t.Errorf("web paths: root %s upper %s", w.Root, w.UpperDir)
	}
	if len(w.LowerDirs) != 1 || w.LowerDirs[0] != filepath.Join(dir, "tree-web") {
		t.Errorf("lower dirs = %v", w.LowerDirs)
	}
	if w.User != "1000" || w.WorkingDir != "/srv" || !w.ReadOnlyRootFS || !w.NoNewPrivs || *w.OOMScoreAdj != 100 {
		t.Errorf("web launch = %+v", w)
	}
	env := strings.Join(w.Env, " ")
	if env != "FOO=bar PATH="+DefaultPath+" AC_APP_NAME=web" {
		t.Errorf("env = %s", env)
	}
	// Default set minus NET_RAW and MKNOD.
	want, _ := stage2.CapNumbers(stage2.DefaultCapabilities)
	if len(w.Capabilities) != len(want)-2 {
		t.Errorf("web caps = %v", w.Capabilities)
	}
	for _, c := range w.Capabilities {
		if c == 13 || c == 27 {
			t.Errorf("removed capability %d kept", c)
		}
	}
	if len(db.Launch.Capabilities) != 1 || db.Launch.Capabilities[0] != 12 {
		t.Errorf("db caps = %v, want [12]", db.Launch.Capabilities)
	}
	if s := w.Seccomp; s == nil || !s.Retain || s.Errno != 95 || len(s.Syscalls) < 250 {
		t.Errorf("web seccomp = %+v", s)
	}
	if s := db.Launch.Seccomp; s == nil || s.Retain || !s.BlockNamespaceClone {
		t.Errorf("db seccomp should be the default: %+v", s)
	}
	if len(w.Mounts) != 2 {
		t.Fatalf("mounts = %+v", w.Mounts)
	}
	if m := w.Mounts[0]; m.Source != "/srv/data" || m.Target != "/data" || !m.ReadOnly || !m.Recursive {
		t.Errorf("host mount = %+v", m)
	}
	if m := w.Mounts[1]; m.Source != filepath.Join(dir, "sharedVolumes/scratch") || m.ReadOnly {
		t.Errorf("empty mount = %+v", m)
	}
	if len(p.EmptyVolumes) != 1 {
		t.Fatalf("empty volumes = %+v", p.EmptyVolumes)
	}
	if ev := p.EmptyVolumes[0]; ev.Mode != 0o777|os.ModeSticky || ev.UID != 1000 || ev.GID != 100 {
		t.Errorf("empty volume = %+v", ev)
	}
	// --net=none: no host resolv.conf; generated hosts file.
	if w.ResolvConf != "" || w.HostsFile != filepath.Join(dir, HostsFile) {
		t.Errorf("dns files: resolv %q hosts %q", w.ResolvConf, w.HostsFile)
	}
}

func TestLoadInsecureOptions(t *testing.T) {
	dir := writePod(t, twoApps, nil)
	p, err := Load(context.Background(), dir, opts(t, "--disable-capabilities-restriction", "--disable-seccomp", "--disable-paths", "--net=host"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Apps {
		if a.Launch.Capabilities != nil || a.Launch.Seccomp != nil || a.Launch.MaskPaths {
			t.Errorf("app %s: caps %v seccomp %v mask %v", a.Launch.Name, a.Launch.Capabilities, a.Launch.Seccomp, a.Launch.MaskPaths)
		}
		if a.SupportsNotify {
			t.Errorf("app %s supports notify without the annotation", a.Launch.Name)
		}
	}
	if p.Hostname != "rkt-1b4e28ba-2fa1-11d2-883f-0016d3cca427" {
		t.Errorf("default hostname = %s", p.Hostname)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, manifest := range map[string]string{
		"both cap sets": `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"a","image":{"id":"sha512-aaaa"},
			"app":{"exec":["/x"],"user":"0","group":"0","isolators":[
			{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_CHOWN"]}},
			{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_KILL"]}}]}}]}`,
		"bad pids annotation": `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"a","image":{"id":"sha512-aaaa"},
			"app":{"exec":["/x"],"user":"0","group":"0"},"annotations":[{"name":"rkt.dev/pids-limit","value":"lots"}]}]}`,
		"unknown syscall": `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"a","image":{"id":"sha512-aaaa"},
			"app":{"exec":["/x"],"user":"0","group":"0","isolators":[
			{"name":"os/linux/seccomp-remove-set","value":{"set":["frobnicate"]}}]}}]}`,
	} {
		dir := writePod(t, manifest, nil)
		if _, err := Load(context.Background(), dir, opts(t)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	dir := writePod(t, twoApps, nil)
	if _, err := Load(context.Background(), dir, opts(t, "--interactive")); err == nil || !strings.Contains(err.Error(), "exactly one app") {
		t.Errorf("--interactive with two apps: %v", err)
	}
}

func TestParseRunArgs(t *testing.T) {
	o := opts(t, "--debug", "--net=host", "--interactive", "--ipc=parent", "--dns-conf-mode=resolv=host,hosts=stage0")
	if !o.Debug || !o.NetHost() || !o.Interactive || o.IPC != "parent" || o.ResolvMode != "host" || o.HostsMode != "stage0" {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{{}, {"--ipc=shared", "u"}, {"--dns-conf-mode=resolv=x", "u"}, {"u", "v"}} {
		if _, err := ParseRunArgs(bad, io.Discard); err == nil {
			t.Errorf("ParseRunArgs(%q) accepted", bad)
		}
	}
}

func TestLoadEventHandlers(t *testing.T) {
	manifest := `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"a","image":{"id":"sha512-aaaa"},
		"app":{"exec":["/x"],"user":"0","group":"0","eventHandlers":[
		{"name":"pre-start","exec":["/pre","1"]},{"name":"post-stop","exec":["/post"]}]}},
		{"name":"b","image":{"id":"sha512-aaaa"},"app":{"exec":["/x"],"user":"0","group":"0"}}]%s}`
	p, err := Load(context.Background(), writePod(t, fmt.Sprintf(manifest, ""), nil), opts(t))
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Apps[0], p.Apps[1]
	if !reflect.DeepEqual(a.PreStart, []string{"/pre", "1"}) || !reflect.DeepEqual(a.PostStop, []string{"/post"}) {
		t.Errorf("app a's handlers: %q, %q", a.PreStart, a.PostStop)
	}
	if b.PreStart != nil || b.PostStop != nil || p.HandlerTimeout != DefaultHandlerTimeout {
		t.Errorf("app b's handlers %q, %q; timeout %v", b.PreStart, b.PostStop, p.HandlerTimeout)
	}
	ann := `,"annotations":[{"name":"rkt.dev/event-handler-timeout","value":"%s"}]`
	p, err = Load(context.Background(), writePod(t, fmt.Sprintf(manifest, fmt.Sprintf(ann, "90s")), nil), opts(t))
	if err != nil || p.HandlerTimeout != 90*time.Second {
		t.Errorf("timeout annotation 90s: %v, %v", p, err)
	}
	for _, bad := range []string{"0s", "-1s", "soon"} {
		_, err = Load(context.Background(), writePod(t, fmt.Sprintf(manifest, fmt.Sprintf(ann, bad)), nil), opts(t))
		if err == nil || !strings.Contains(err.Error(), HandlerTimeoutAnnotation) {
			t.Errorf("timeout annotation %q: %v", bad, err)
		}
	}
	empty := `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"a","image":{"id":"sha512-aaaa"},
		"app":{"exec":["/x"],"user":"0","group":"0","eventHandlers":[{"name":"pre-start","exec":[]}]}}]}`
	if _, err = Load(context.Background(), writePod(t, empty, nil), opts(t)); err == nil || !strings.Contains(err.Error(), "pre-start has an empty exec") {
		t.Errorf("empty handler exec: %v", err)
	}
}
