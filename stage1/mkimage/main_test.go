package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
)

func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "stage1")
	if err := os.WriteFile(bin, []byte("\x7fELF fake binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out1, out2 := filepath.Join(dir, "a.aci"), filepath.Join(dir, "b.aci")
	if err := run(options{flavor: "fly", bin: bin, version: "1.2.3", out: out1}); err != nil {
		t.Fatal(err)
	}
	if err := run(options{flavor: "fly", bin: bin, version: "1.2.3", out: out2}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out1)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("two builds differ")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(mtime) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v owner %d:%d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		switch h.Name {
		case "manifest":
			data, _ := io.ReadAll(tr)
			var im schema.ImageManifest
			if err := im.UnmarshalJSON(data); err != nil {
				t.Fatalf("manifest: %v", err)
			}
			if im.Name != "rkt.dev/stage1-fly" {
				t.Errorf("name %s", im.Name)
			}
			if v, _ := im.Labels.Get("version"); v != "1.2.3" {
				t.Errorf("version label %q", v)
			}
			for anno, want := range map[string]string{
				"coreos.com/rkt/stage1/run": "/init", "coreos.com/rkt/stage1/enter": "/enter",
				"coreos.com/rkt/stage1/gc": "/gc", "coreos.com/rkt/stage1/stop": "/stop",
				"coreos.com/rkt/stage1/interface-version": "7",
			} {
				if v, _ := im.Annotations.Get(anno); v != want {
					t.Errorf("annotation %s = %q, want %q", anno, v, want)
				}
			}
		case "rootfs/init":
			data, _ := io.ReadAll(tr)
			if string(data) != "\x7fELF fake binary" || h.Mode != 0o755 {
				t.Errorf("init: mode %o content %q", h.Mode, data)
			}
		case "rootfs/enter", "rootfs/gc", "rootfs/stop":
			if h.Typeflag != tar.TypeLink || h.Linkname != "rootfs/init" {
				t.Errorf("%s is not a hard link to rootfs/init: %+v", h.Name, h)
			}
		}
	}
	want := []string{"manifest", "rootfs/", "rootfs/init", "rootfs/enter", "rootfs/gc", "rootfs/stop"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("entry %d = %s, want %s", i, names[i], want[i])
		}
	}
	if err := run(options{flavor: "kvm", bin: bin, version: "1", out: out1}); err == nil {
		t.Error("unknown flavor accepted")
	}
}

// TestPlugins: --plugins puts the plugins under
// rootfs/usr/lib/rkt/plugins/net (directories first, files sorted,
// 0755), for the default flavor only, and only with the plugins the
// built-in networks need.
func TestPlugins(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "d.aci")
	bin := filepath.Join(dir, "stage1")
	os.WriteFile(bin, []byte("bin"), 0o755)
	initBin, launcher := filepath.Join(dir, "init"), filepath.Join(dir, "launcher")
	os.WriteFile(initBin, []byte("init"), 0o755)
	os.WriteFile(launcher, []byte("launcher"), 0o755)
	def := func(plugins string) options {
		return options{flavor: "default", bin: bin, init: initBin, launcher: launcher, plugins: plugins, version: "1", out: out}
	}
	plugins := filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	for _, p := range []string{"ptp", "portmap", "host-local", "bridge"} {
		if err := os.WriteFile(filepath.Join(plugins, p), []byte("plugin "+p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(def(plugins)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if dir, base := filepath.Split(h.Name); dir == "rootfs/usr/lib/rkt/plugins/net/" && base != "" {
			body, _ := io.ReadAll(tr)
			if string(body) != "plugin "+base || h.Mode != 0o755 || h.Typeflag != tar.TypeReg {
				t.Errorf("%s: mode %o type %c content %q", h.Name, h.Mode, h.Typeflag, body)
			}
		}
	}
	want := []string{"manifest", "rootfs/", "rootfs/stage1", "rootfs/enter", "rootfs/gc", "rootfs/stop", "rootfs/init", "rootfs/stage2",
		"rootfs/usr/", "rootfs/usr/lib/", "rootfs/usr/lib/rkt/", "rootfs/usr/lib/rkt/plugins/", "rootfs/usr/lib/rkt/plugins/net/",
		"rootfs/usr/lib/rkt/plugins/net/bridge", "rootfs/usr/lib/rkt/plugins/net/host-local",
		"rootfs/usr/lib/rkt/plugins/net/portmap", "rootfs/usr/lib/rkt/plugins/net/ptp"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries\n%v\nwant\n%v", names, want)
	}

	if err := run(options{flavor: "fly", bin: bin, plugins: plugins, version: "1", out: out}); err == nil || !strings.Contains(err.Error(), "no networking") {
		t.Errorf("fly with --plugins: %v", err)
	}
	os.Remove(filepath.Join(plugins, "portmap"))
	if err := run(def(plugins)); err == nil || !strings.Contains(err.Error(), "portmap") {
		t.Errorf("plugins without portmap: %v", err)
	}
	if err := run(def(filepath.Join(dir, "none"))); err == nil || !strings.Contains(err.Error(), "build-plugins.sh") {
		t.Errorf("missing plugins directory: %v", err)
	}
	o := def("")
	o.launcher = ""
	if err := run(o); err == nil || !strings.Contains(err.Error(), "--launcher") {
		t.Errorf("default flavor without a launcher: %v", err)
	}
}
