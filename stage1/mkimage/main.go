// Command mkimage writes a stage1 image (an uncompressed ACI) from built
// stage1 binaries:
//
//	go run ./stage1/mkimage --flavor fly --bin PATH [--version V] -o OUT.aci
//	go run ./stage1/mkimage --flavor default --bin PATH --init PATH --launcher PATH [--plugins DIR] [--version V] -o OUT.aci
//
// The image is deterministic: entries in a fixed order, owned by 0:0,
// with a fixed modification time. The fly flavor's rootfs holds its one
// binary as /init with /enter, /gc, /stop as hard links to it. The
// default flavor's holds three: the big binary (--bin) as /stage1 with
// /enter, /gc, /stop linked to it, the small run entrypoint (--init) as
// /init and the app launcher (--launcher) as /stage2. The manifest names
// the entrypoints with the annotations of docs/stage1-abi.md. With
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
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/stage1abi"
)

// InterfaceVersion is the stage0↔stage1 interface version the binaries
// implement.
var InterfaceVersion = strconv.Itoa(stage1abi.InterfaceVersion)

// pluginsDir is where the image holds its CNI plugins (no leading /).
const pluginsDir = "usr/lib/rkt/plugins/net"

// requiredPlugins are the plugins the built-in networks use.
var requiredPlugins = []string{"ptp", "host-local", "portmap"}

// mtime is every entry's modification time.
var mtime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// entrypoints maps the annotations to the rootfs paths.
var entrypoints = []struct{ anno, path string }{
	{stage1abi.AnnoRun, "/init"},
	{stage1abi.AnnoEnter, "/enter"},
	{stage1abi.AnnoGC, "/gc"},
	{stage1abi.AnnoStop, "/stop"},
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the built stage1 binary (the default flavor's big one)")
	flag.StringVar(&o.init, "init", "", "the default flavor's small run entrypoint binary")
	flag.StringVar(&o.launcher, "launcher", "", "the default flavor's app launcher binary")
	flag.StringVar(&o.plugins, "plugins", "", "directory of CNI plugins to ship in /"+pluginsDir+" (default flavor)")
	flag.StringVar(&o.version, "version", "0.1.0", "the image's version label")
	flag.StringVar(&o.out, "o", "", "output ACI file")
	flag.StringVar(&o.flavor, "flavor", "default", "stage1 flavor: default or fly")
	flag.Parse()
	if err := run(o); err != nil {
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
	im.Annotations.Set(stage1abi.AnnoInterface, InterfaceVersion)
	if flavor == "fly" {
		// fly has the host's network only: stage0 passes --net=host when
		// the user names no network (docs/stage1-abi.md).
		im.Annotations.Set("rkt.dev/stage1/default-net", "host")
	}
	return json.MarshalIndent(im, "", "  ")
}

// options are mkimage's flags.
type options struct {
	flavor, bin, init, launcher, plugins, version, out string
}

// binary is a binary of the image: its path in the ACI and on disk.
type binary struct{ name, path string }

func run(o options) error {
	if o.flavor != "default" && o.flavor != "fly" {
		return fmt.Errorf("--flavor=%s: want default or fly", o.flavor)
	}
	if o.bin == "" || o.out == "" {
		return errors.New("--bin and -o are required")
	}
	if o.plugins != "" && o.flavor != "default" {
		return fmt.Errorf("--plugins: the %s flavor has no networking (host network namespace only): leave --plugins out", o.flavor)
	}
	// The first binary gets the entrypoint links.
	bins := []binary{{"rootfs/init", o.bin}}
	switch {
	case o.flavor == "default" && (o.init == "" || o.launcher == ""):
		return errors.New("the default flavor needs --init (stage1/default/init) and --launcher (stage1/default/launcher) besides --bin")
	case o.flavor == "default":
		bins = []binary{{"rootfs/stage1", o.bin}, {"rootfs/init", o.init}, {"rootfs/stage2", o.launcher}}
	case o.init != "" || o.launcher != "":
		return fmt.Errorf("--init and --launcher: the %s flavor is one binary: leave them out", o.flavor)
	}
	var pluginFiles []string
	if o.plugins != "" {
		var err error
		if pluginFiles, err = listPlugins(o.plugins); err != nil {
			return err
		}
	}
	m, err := manifest(o.flavor, o.version)
	if err != nil {
		return err
	}
	for _, b := range bins {
		if _, err := os.Stat(b.path); err != nil {
			return fmt.Errorf("stage1 binary: %w (build it first)", err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.out), ".mkimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w, m, bins, pluginFiles); err != nil {
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
	return os.Rename(tmp.Name(), o.out)
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

// write writes the ACI: manifest, rootfs/, the binaries with the
// entrypoint links to the first, then the plugins under
// rootfs/usr/lib/rkt/plugins/net/.
func write(w io.Writer, manifest []byte, bins []binary, plugins []string) error {
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
	for i, b := range bins {
		if err := writeFile(tw, hdr, b.name, b.path); err != nil {
			return err
		}
		if i > 0 {
			continue
		}
		for _, ep := range entrypoints {
			if name := "rootfs" + ep.path; name != b.name && (len(bins) == 1 || ep.path != "/init") {
				if err := hdr(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: b.name, Mode: 0o755}); err != nil {
					return err
				}
			}
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
		if err := writeFile(tw, hdr, "rootfs/"+pluginsDir+"/"+filepath.Base(p), p); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeFile adds the binary at path as name, mode 0755.
func writeFile(tw *tar.Writer, hdr func(*tar.Header) error, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := hdr(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: fi.Size()}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil || n != fi.Size() {
		return fmt.Errorf("copy %s (%d of %d bytes): %v", path, n, fi.Size(), err)
	}
	return nil
}
