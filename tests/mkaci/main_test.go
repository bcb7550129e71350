package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
)

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string]string{
		`/inspect --print-msg=hi`:          `/inspect|--print-msg=hi`,
		`  /bin/sh   -c 'echo "a b"; x'  `: `/bin/sh|-c|echo "a b"; x`,
		`/x "two words" back\ slash`:       `/x|two words|back slash`,
		`/x "q\"uote" "\n"`:                `/x|q"uote|\n`,
		`/x ''`:                            `/x|`,
	} {
		got, err := splitCommand(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`/x 'open`, `/x \`, `   `} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) accepted", bad)
		}
	}
}

func build(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		return nil, err
	}
	if err := run(context.Background(), o); err != nil {
		return nil, err
	}
	return os.ReadFile(o.out)
}

func entries(t *testing.T, aci []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(aci))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = string(body)
		if h.Typeflag == tar.TypeSymlink {
			out[h.Name] = "-> " + h.Linkname
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	tmp := t.TempDir()
	host := filepath.Join(tmp, "tree")
	if err := os.MkdirAll(filepath.Join(host, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(host, "srv", "index.html"), []byte("hello"), 0o644)
	os.Symlink("srv/index.html", filepath.Join(host, "index"))
	extra := filepath.Join(tmp, "extra.conf")
	os.WriteFile(extra, []byte("conf"), 0o600)

	args := func(out string) []string {
		return []string{"-o", out, "--name", "example.com/web", "--label", "version=1.2",
			"--exec", "/bin/httpd -f -p 80", "--user", "1000", "--group", "1000",
			"--env", "B=2", "--env", "A=1", "--port", "http:tcp:80", "--mount", "data:/data:ro",
			"--annotation", "example.com/note=x", "--dep", "example.com/base,version=3",
			"--dir", host, "--file", extra + ":/etc/web/extra.conf", "--compression", "gzip"}
	}
	a, err := build(t, args(filepath.Join(tmp, "a.aci"))...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := build(t, args(filepath.Join(tmp, "b.aci"))...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the same inputs gave different images")
	}
	es := entries(t, a)
	for name, want := range map[string]string{
		"rootfs/srv/index.html":     "hello",
		"rootfs/index":              "-> srv/index.html",
		"rootfs/etc/web/extra.conf": "conf",
		"rootfs/etc/web":            "",
		"rootfs/etc":                "",
		"rootfs":                    "",
	} {
		if got, ok := es[name]; !ok || got != want {
			t.Errorf("%s: %q (present %v), want %q", name, got, ok, want)
		}
	}
	var im schema.ImageManifest
	if err := im.UnmarshalJSON([]byte(es["manifest"])); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if im.App == nil || strings.Join(im.App.Exec, " ") != "/bin/httpd -f -p 80" || im.App.User != "1000" ||
		len(im.App.Ports) != 1 || !im.App.MountPoints[0].ReadOnly || len(im.Dependencies) != 1 {
		t.Errorf("manifest: %s", es["manifest"])
	}
	if v, _ := im.Labels.Get("version"); v != "1.2" {
		t.Errorf("version label %q", v)
	}

	// A --file later than --dir replaces the same path.
	args2 := append(args(filepath.Join(tmp, "c.aci")), "--file", extra+":/srv/index.html")
	c, err := build(t, args2...)
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, c)["rootfs/srv/index.html"]; got != "conf" {
		t.Errorf("override: %q", got)
	}
}

func TestBadArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.aci")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "example.com/x"}, "-o OUT.aci"},
		{[]string{"-o", out, "--name", "Bad Name"}, "image name"},
		{[]string{"-o", out, "--name", "example.com/x", "--port", "http:80"}, "NAME:PROTO:PORT"},
		{[]string{"-o", out, "--name", "example.com/x", "--port", "http:tcp:99999"}, "1 to 65535"},
		{[]string{"-o", out, "--name", "example.com/x", "--env", "NOEQUALS"}, "KEY=VALUE"},
		{[]string{"-o", out, "--name", "example.com/x", "--mount", "data:/d:rw"}, "NAME:PATH:ro"},
		{[]string{"-o", out, "--name", "example.com/x", "--compression", "lzma"}, "--compression"},
		{[]string{"-o", out, "--name", "example.com/x", "--file", "/nonexistent:/x"}, "no such file"},
		{[]string{"-o", out, "--name", "example.com/x", "--file", "/etc/hostname:relative"}, "ABSOLUTE"},
		{[]string{"-o", out, "--name", "example.com/x", "--exec", "/x 'open"}, "unterminated quote"},
		{[]string{"-o", out, "--name", "example.com/x", "--inspect", "--inspect-bin", "/x"}, "not both"},
	} {
		_, err := build(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed build left %s: %v", out, err)
	}
}
