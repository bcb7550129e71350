// Command mkaci builds an ACI (appc image) from the command line, for the
// README demo, benchmarks and manual tests. The same inputs always give a
// byte-identical image (fixed times, sorted entries, owners 0:0).
//
//	mkaci -o OUT.aci --name NAME [--label K=V]... [--exec "CMD ARGS"]
//	      [--user U --group G] [--working-dir D] [--env K=V]...
//	      [--port NAME:PROTO:PORT]... [--mount NAME:PATH[:ro]]...
//	      [--annotation K=V]... [--dep NAME[,K=V...][,imageID=sha512-...]]...
//	      [--busybox] [--inspect | --inspect-bin PATH] [--dir HOSTDIR]...
//	      [--file HOSTPATH:IMAGEPATH]... [--compression gzip|bzip2|xz|zstd|none]
//
// Content comes, in this order, from --busybox, --inspect, each --dir and
// each --file; a later source replaces an earlier entry of the same path.
// Missing parent directories are added (0755). --exec is split like a
// shell would split it (quotes and backslashes, no expansion). --inspect
// builds tests/inspect with the go tool, so it must run inside the rkt
// checkout; --inspect-bin takes an already built inspect binary instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/rkt/rkt/tests/testutils"
)

// listFlag collects the values of a repeated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

type options struct {
	out, name, exec, user, group, workDir, compression, inspectBin string
	labels, env, ports, mounts, annotations, deps, dirs, files     listFlag
	busybox, inspect                                               bool
}

func parseFlags(args []string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mkaci", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&o.out, "o", "", "output file (required)")
	fs.StringVar(&o.name, "name", "", "image name, e.g. example.com/app (required)")
	fs.Var(&o.labels, "label", "label K=V (repeatable)")
	fs.StringVar(&o.exec, "exec", "", "app command line, e.g. \"/inspect --print-msg=hi\"")
	fs.StringVar(&o.user, "user", "", "app user (default 0)")
	fs.StringVar(&o.group, "group", "", "app group (default 0)")
	fs.StringVar(&o.workDir, "working-dir", "", "app working directory")
	fs.Var(&o.env, "env", "app environment K=V (repeatable)")
	fs.Var(&o.ports, "port", "app port NAME:PROTO:PORT (repeatable)")
	fs.Var(&o.mounts, "mount", "app mount point NAME:PATH[:ro] (repeatable)")
	fs.Var(&o.annotations, "annotation", "annotation K=V (repeatable)")
	fs.Var(&o.deps, "dep", "dependency NAME[,K=V...][,imageID=sha512-...] (repeatable)")
	fs.BoolVar(&o.busybox, "busybox", false, "add the host's static busybox, /etc/passwd, /etc/group, /tmp")
	fs.BoolVar(&o.inspect, "inspect", false, "add /inspect, built from tests/inspect")
	fs.StringVar(&o.inspectBin, "inspect-bin", "", "add this prebuilt binary as /inspect")
	fs.Var(&o.dirs, "dir", "copy this host directory's contents into the rootfs (repeatable)")
	fs.Var(&o.files, "file", "copy HOSTPATH to IMAGEPATH (repeatable)")
	fs.StringVar(&o.compression, "compression", "gzip", "gzip, bzip2, xz, zstd or none")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every input is a flag", fs.Args())
	}
	if o.out == "" || o.name == "" {
		return nil, errors.New("both -o OUT.aci and --name NAME are required")
	}
	switch testutils.Compression(o.compression) {
	case testutils.CompressionNone, testutils.CompressionGzip, testutils.CompressionBzip2,
		testutils.CompressionXz, testutils.CompressionZstd:
	default:
		return nil, fmt.Errorf("--compression %q: use gzip, bzip2, xz, zstd or none", o.compression)
	}
	if o.inspect && o.inspectBin != "" {
		return nil, errors.New("use either --inspect or --inspect-bin, not both")
	}
	return o, nil
}

// keyValues parses K=V items into a map.
func keyValues(what string, items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", what, it)
		}
		m[k] = v
	}
	return m, nil
}

func parsePorts(items []string) ([]testutils.Port, error) {
	var out []testutils.Port
	for _, it := range items {
		parts := strings.Split(it, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("--port %q: want NAME:PROTO:PORT, e.g. http:tcp:80", it)
		}
		n, err := strconv.ParseUint(parts[2], 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("--port %q: port must be a number from 1 to 65535", it)
		}
		out = append(out, testutils.Port{Name: parts[0], Protocol: parts[1], Port: uint(n)})
	}
	return out, nil
}

func parseMounts(items []string) ([]testutils.MountPoint, error) {
	var out []testutils.MountPoint
	for _, it := range items {
		parts := strings.Split(it, ":")
		if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro") {
			return nil, fmt.Errorf("--mount %q: want NAME:PATH or NAME:PATH:ro", it)
		}
		out = append(out, testutils.MountPoint{Name: parts[0], Path: parts[1], ReadOnly: len(parts) == 3})
	}
	return out, nil
}

func parseDeps(items []string) ([]testutils.Dependency, error) {
	var out []testutils.Dependency
	for _, it := range items {
		parts := strings.Split(it, ",")
		d := testutils.Dependency{ImageName: parts[0]}
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--dep %q: %q is not KEY=VALUE", it, kv)
			}
			if k == "imageID" {
				d.ImageID = v
				continue
			}
			if d.Labels == nil {
				d.Labels = map[string]string{}
			}
			d.Labels[k] = v
		}
		out = append(out, d)
	}
	return out, nil
}

func image(o *options) (testutils.Image, error) {
	img := testutils.Image{Name: o.name, User: o.user, Group: o.group, WorkingDir: o.workDir}
	var err error
	if o.exec != "" {
		if img.Exec, err = splitCommand(o.exec); err != nil {
			return img, fmt.Errorf("--exec %q: %w", o.exec, err)
		}
	}
	if img.Labels, err = keyValues("label", o.labels); err != nil {
		return img, err
	}
	if img.Env, err = keyValues("env", o.env); err != nil {
		return img, err
	}
	if img.Annotations, err = keyValues("annotation", o.annotations); err != nil {
		return img, err
	}
	if img.Ports, err = parsePorts(o.ports); err != nil {
		return img, err
	}
	if img.MountPoints, err = parseMounts(o.mounts); err != nil {
		return img, err
	}
	if img.Dependencies, err = parseDeps(o.deps); err != nil {
		return img, err
	}
	return img, nil
}

// content gathers the rootfs entries from every source, later ones winning.
func content(o *options, tmp string) ([]testutils.Entry, error) {
	var all []testutils.Entry
	if o.busybox {
		es, err := testutils.BusyboxEntries()
		if err != nil {
			return nil, fmt.Errorf("--busybox: %w", err)
		}
		all = append(all, es...)
	}
	if o.inspect {
		bin, err := testutils.BuildInspect(tmp)
		if err != nil {
			return nil, fmt.Errorf("--inspect: %w (or pass a built binary with --inspect-bin)", err)
		}
		o.inspectBin = bin
	}
	if o.inspectBin != "" {
		body, err := os.ReadFile(o.inspectBin)
		if err != nil {
			return nil, fmt.Errorf("inspect binary: %w", err)
		}
		all = append(all, testutils.File("inspect", 0o755, string(body)))
	}
	for _, d := range o.dirs {
		es, err := testutils.DirEntries(d)
		if err != nil {
			return nil, fmt.Errorf("--dir: %w", err)
		}
		all = append(all, es...)
	}
	for _, f := range o.files {
		e, err := hostFile(f)
		if err != nil {
			return nil, err
		}
		all = append(all, e)
	}
	return withParents(dedupe(all)), nil
}

// hostFile reads a --file HOSTPATH:IMAGEPATH argument into an entry.
func hostFile(arg string) (testutils.Entry, error) {
	host, img, ok := strings.Cut(arg, ":")
	if !ok || host == "" || !path.IsAbs(img) || path.Clean(img) == "/" {
		return testutils.Entry{}, fmt.Errorf("--file %q: want HOSTPATH:/ABSOLUTE/IMAGE/PATH", arg)
	}
	fi, err := os.Stat(host)
	if err != nil {
		return testutils.Entry{}, fmt.Errorf("--file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return testutils.Entry{}, fmt.Errorf("--file %s: not a regular file (use --dir for directories)", host)
	}
	body, err := os.ReadFile(host)
	if err != nil {
		return testutils.Entry{}, fmt.Errorf("--file: %w", err)
	}
	mode := int64(fi.Mode().Perm())
	return testutils.File(path.Clean(img), mode, string(body)), nil
}

// dedupe keeps the last entry of each name, in first-seen position.
func dedupe(es []testutils.Entry) []testutils.Entry {
	idx := map[string]int{}
	var out []testutils.Entry
	for _, e := range es {
		name := strings.TrimSuffix(e.Header.Name, "/")
		if i, ok := idx[name]; ok {
			out[i] = e
			continue
		}
		idx[name] = len(out)
		out = append(out, e)
	}
	return out
}

// withParents adds a 0755 directory entry for every missing parent.
func withParents(es []testutils.Entry) []testutils.Entry {
	have := map[string]bool{"rootfs": true}
	for _, e := range es {
		have[strings.TrimSuffix(e.Header.Name, "/")] = true
	}
	out := es
	for _, e := range es {
		for dir := path.Dir(strings.TrimSuffix(e.Header.Name, "/")); !have[dir] && dir != "." && dir != "/"; dir = path.Dir(dir) {
			have[dir] = true
			out = append(out, testutils.Dir(dir, 0o755))
		}
	}
	return out
}

func run(ctx context.Context, o *options) error {
	img, err := image(o)
	if err != nil {
		return err
	}
	if _, err := testutils.ManifestJSON(img); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mkaci-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := content(o, tmp)
	if err != nil {
		return err
	}
	aci := &testutils.ACI{Image: img, Entries: entries, Compression: testutils.Compression(o.compression)}
	return aci.WriteFile(o.out)
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil {
		err = run(context.Background(), o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkaci: %v\n", err)
		os.Exit(1)
	}
}
