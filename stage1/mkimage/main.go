// Command mkimage writes a stage1 image (an uncompressed ACI) from a built
// stage1 binary:
//
//	go run ./stage1/mkimage --flavor default|fly --bin PATH [--plugins DIR] [--version V] -o OUT.aci
//
// The image is deterministic: entries in a fixed order, owned by 0:0,
// with a fixed modification time. Its rootfs holds the binary as /init
// and /enter, /gc, /stop as hard links to it; the manifest names them
// with the stage1 entrypoint annotations of docs/stage1-abi.md. With
// --plugins (default flavor only), the CNI plugins in DIR (as built by
// networking/build-plugins.sh) go into /usr/lib/rkt/plugins/net.
package main

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// InterfaceVersion is the stage0↔stage1 interface version the binaries
// implement.
const InterfaceVersion = "6"

// pluginsDir is where the image holds its CNI plugins (no leading /).
const pluginsDir = "usr/lib/rkt/plugins/net"

// requiredPlugins are the plugins the built-in networks use.
var requiredPlugins = []string{"ptp", "host-local", "portmap"}

// mtime is every entry's modification time.
var mtime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// entrypoints maps the annotations to the rootfs paths.
var entrypoints = []struct{ anno, path string }{
	{"coreos.com/rkt/stage1/run", "/init"},
	{"coreos.com/rkt/stage1/enter", "/enter"},
	{"coreos.com/rkt/stage1/gc", "/gc"},
	{"coreos.com/rkt/stage1/stop", "/stop"},
}

func main() {
	flavor := flag.String("flavor", "default", "stage1 flavor: default or fly")
	bin := flag.String("bin", "", "the built stage1 binary")
	plugins := flag.String("plugins", "", "directory of CNI plugins to ship in /"+pluginsDir+" (default flavor)")
	version := flag.String("version", "0.1.0", "the image's version label")
	out := flag.String("o", "", "output ACI file")
	flag.Parse()
	if err := run(*flavor, *bin, *plugins, *version, *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

// manifest returns the stage1 image manifest.
func manifest(flavor, version string) ([]byte, error) {
	name, err := types.NewACIdentifier("rkt.dev/stage1-" + flavor)
	if err != nil {
		return nil, err
	}
	im := schema.BlankImageManifest()
	im.Name = *name
	im.Labels, err = types.LabelsFromMap(map[types.ACIdentifier]string{
		"version": version, "os": "linux", "arch": "amd64",
	})
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	for _, ep := range entrypoints {
		im.Annotations.Set(types.ACIdentifier(ep.anno), ep.path)
	}
	im.Annotations.Set("coreos.com/rkt/stage1/interface-version", InterfaceVersion)
	if flavor == "fly" {
		// fly has the host's network only: stage0 passes --net=host when
		// the user names no network (docs/stage1-abi.md).
		im.Annotations.Set("rkt.dev/stage1/default-net", "host")
	}
	return json.MarshalIndent(im, "", "  ")
}

func run(flavor, bin, plugins, version, out string) error {
	if flavor != "default" && flavor != "fly" {
		return fmt.Errorf("--flavor=%s: want default or fly", flavor)
	}
	if bin == "" || out == "" {
		return errors.New("--bin and -o are required")
	}
	if plugins != "" && flavor != "default" {
		return fmt.Errorf("--plugins: the %s flavor has no networking (host network namespace only): leave --plugins out", flavor)
	}
	var pluginFiles []string
	if plugins != "" {
		var err error
		if pluginFiles, err = listPlugins(plugins); err != nil {
			return err
		}
	}
	m, err := manifest(flavor, version)
	if err != nil {
		return err
	}
	src, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("open the stage1 binary: %w (build it first)", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".mkimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w, m, src, fi.Size(), pluginFiles); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// listPlugins returns the plugin files of dir, sorted, after checking
// that the built-in networks' plugins are there.
func listPlugins(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--plugins: %w (build them with networking/build-plugins.sh %s)", err, dir)
	}
	var files []string
	have := map[string]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("--plugins: %s is not a regular file: the directory should hold only plugin binaries", filepath.Join(dir, e.Name()))
		}
		files = append(files, filepath.Join(dir, e.Name()))
		have[e.Name()] = true
	}
	for _, p := range requiredPlugins {
		if !have[p] {
			return nil, fmt.Errorf("--plugins: %s has no %s plugin, which the built-in networks need: build them with networking/build-plugins.sh %s", dir, p, dir)
		}
	}
	sort.Strings(files)
	return files, nil
}

// write writes the ACI: manifest, rootfs/, rootfs/init and the links,
// then the plugins under rootfs/usr/lib/rkt/plugins/net/.
func write(w io.Writer, manifest []byte, bin io.Reader, size int64, plugins []string) error {
	tw := tar.NewWriter(w)
	hdr := func(h *tar.Header) error {
		h.ModTime, h.Uid, h.Gid, h.Format = mtime, 0, 0, tar.FormatUSTAR
		h.Uname, h.Gname = "", ""
		return tw.WriteHeader(h)
	}
	if err := hdr(&tar.Header{Name: "manifest", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(manifest))}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	if err := hdr(&tar.Header{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	if err := hdr(&tar.Header{Name: "rootfs/init", Typeflag: tar.TypeReg, Mode: 0o755, Size: size}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, bin); err != nil || n != size {
		return fmt.Errorf("copy the stage1 binary (%d of %d bytes): %v", n, size, err)
	}
	for _, ep := range entrypoints[1:] {
		if err := hdr(&tar.Header{Name: "rootfs" + ep.path, Typeflag: tar.TypeLink, Linkname: "rootfs/init", Mode: 0o755}); err != nil {
			return err
		}
	}
	if len(plugins) > 0 {
		dir := "rootfs"
		for _, part := range strings.Split(pluginsDir, "/") {
			dir += "/" + part
			if err := hdr(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return err
			}
		}
	}
	for _, p := range plugins {
		if err := writePlugin(tw, hdr, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writePlugin adds one plugin binary, mode 0755.
func writePlugin(tw *tar.Writer, hdr func(*tar.Header) error, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("plugin: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("plugin: %w", err)
	}
	name := "rootfs/" + pluginsDir + "/" + filepath.Base(path)
	if err := hdr(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: fi.Size()}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil || n != fi.Size() {
		return fmt.Errorf("copy plugin %s (%d of %d bytes): %v", path, n, fi.Size(), err)
	}
	return nil
}
