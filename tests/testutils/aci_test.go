package testutils

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// readEntry is one entry read back from an archive.
type readEntry struct {
	hdr  tar.Header
	body string
}

// decompress undoes c, checking the stream's magic number.
func decompress(t *testing.T, c Compression, data []byte) []byte {
	t.Helper()
	magic := map[Compression][]byte{
		CompressionGzip:  {0x1f, 0x8b},
		CompressionBzip2: []byte("BZh"),
		CompressionXz:    {0xfd, '7', 'z', 'X', 'Z', 0},
		CompressionZstd:  {0x28, 0xb5, 0x2f, 0xfd},
	}
	if m, ok := magic[c]; ok && !bytes.HasPrefix(data, m) {
		t.Fatalf("%s output starts with % x, want magic % x", c, data[:min(8, len(data))], m)
	}
	var r io.Reader
	var err error
	switch c {
	case "", CompressionNone:
		return data
	case CompressionGzip:
		r, err = gzip.NewReader(bytes.NewReader(data))
	case CompressionBzip2:
		r = bzip2.NewReader(bytes.NewReader(data))
	case CompressionXz:
		r, err = xz.NewReader(bytes.NewReader(data))
	case CompressionZstd:
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data))
		if err == nil {
			defer d.Close()
			r = d
		}
	default:
		t.Fatalf("unknown compression %q", c)
	}
	if err != nil {
		t.Fatalf("open %s stream: %v", c, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompress %s: %v", c, err)
	}
	return out
}

func readTar(t *testing.T, data []byte) []readEntry {
	t.Helper()
	var out []readEntry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar body of %s: %v", h.Name, err)
		}
		out = append(out, readEntry{*h, string(body)})
	}
}

func sampleACI(c Compression) *ACI {
	return &ACI{
		Image: Image{
			Name:   "example.com/sample",
			Labels: map[string]string{"version": "1.0"},
			Exec:   []string{"/bin/sh", "-c", "echo hi"},
			Env:    map[string]string{"B": "2", "A": "1"},
		},
		Entries: []Entry{
			File("etc/zeta", 0o600, "zeta\n"),
			Dir("etc", 0o755),
			Symlink("bin/sh", "busybox"),
			File("/bin/busybox", 0o4755, "not really busybox"),
			Dir("rootfs/bin", 0o755),
			Hardlink("bin/ash", "bin/busybox"),
		},
		Compression: c,
	}
}

func TestWriteEachCompression(t *testing.T) {
	for _, c := range []Compression{"", CompressionNone, CompressionGzip, CompressionBzip2, CompressionXz, CompressionZstd} {
		t.Run(string(c), func(t *testing.T) {
			data, err := sampleACI(c).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			es := readTar(t, decompress(t, c, data))
			var names []string
			for _, e := range es {
				names = append(names, e.hdr.Name)
				if !e.hdr.ModTime.Equal(FixedTime) {
					t.Errorf("%s: mtime %v, want %v", e.hdr.Name, e.hdr.ModTime, FixedTime)
				}
			}
			want := "manifest rootfs rootfs/bin rootfs/bin/ash rootfs/bin/busybox rootfs/bin/sh rootfs/etc rootfs/etc/zeta"
			if got := strings.Join(names, " "); got != want {
				t.Fatalf("entries\n got %s\nwant %s", got, want)
			}
			var im schema.ImageManifest
			if err := im.UnmarshalJSON([]byte(es[0].body)); err != nil {
				t.Fatalf("manifest does not validate: %v\n%s", err, es[0].body)
			}
			if im.Name != "example.com/sample" || im.App == nil || im.App.Exec[2] != "echo hi" {
				t.Errorf("manifest round trip: %+v", im)
			}
			byName := map[string]readEntry{}
			for _, e := range es {
				byName[e.hdr.Name] = e
			}
			if e := byName["rootfs/bin/busybox"]; e.body != "not really busybox" || e.hdr.Mode != 0o4755 || e.hdr.Typeflag != tar.TypeReg {
				t.Errorf("busybox entry: mode %o type %c body %q", e.hdr.Mode, e.hdr.Typeflag, e.body)
			}
			if e := byName["rootfs/bin/sh"]; e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "busybox" {
				t.Errorf("sh symlink: type %c -> %q", e.hdr.Typeflag, e.hdr.Linkname)
			}
			if e := byName["rootfs/bin/ash"]; e.hdr.Typeflag != tar.TypeLink || e.hdr.Linkname != "rootfs/bin/busybox" {
				t.Errorf("ash hardlink: type %c -> %q", e.hdr.Typeflag, e.hdr.Linkname)
			}
			if e := byName["rootfs"]; e.hdr.Typeflag != tar.TypeDir || e.hdr.Mode != 0o755 {
				t.Errorf("rootfs entry: type %c mode %o", e.hdr.Typeflag, e.hdr.Mode)
			}
		})
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionBzip2, CompressionXz, CompressionZstd} {
		a, err := sampleACI(c).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		// Same content, entries given in another order, maps rebuilt.
		other := sampleACI(c)
		for i, j := 0, len(other.Entries)-1; i < j; i, j = i+1, j-1 {
			other.Entries[i], other.Entries[j] = other.Entries[j], other.Entries[i]
		}
		b, err := other.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two builds of the same image differ", c)
		}
		changed := sampleACI(c)
		changed.Entries[0] = File("etc/zeta", 0o600, "zeta!\n")
		d, err := changed.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, d) {
			t.Errorf("%s: a changed file gave the same bytes", c)
		}
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.aci")
	if err := sampleACI(CompressionGzip).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sampleACI(CompressionGzip).Bytes()
	if !bytes.Equal(data, want) {
		t.Error("WriteFile wrote other bytes than Bytes")
	}
	bad := sampleACI("lzma")
	if err := bad.WriteFile(path); err == nil || !strings.Contains(err.Error(), `unknown compression "lzma"`) {
		t.Errorf("unknown compression: err = %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Error("a failed WriteFile changed the existing file")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".x.aci.tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestHostileEntriesAreVerbatim(t *testing.T) {
	own := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	a := &ACI{
		Manifest:     []byte(`{"not":"a manifest"}`),
		OmitManifest: true,
		KeepOrder:    true,
		Entries: []Entry{
			{Header: tar.Header{Typeflag: tar.TypeReg, Name: "rootfs/../../evil", Mode: 0o644, ModTime: own}, Body: []byte("x")},
			{Header: tar.Header{Typeflag: tar.TypeReg, Name: "/etc/abs", Mode: 0o644}, Body: []byte("y")},
			{Header: tar.Header{Typeflag: tar.TypeChar, Name: "rootfs/dev/mem", Mode: 0o600, Devmajor: 1, Devminor: 1}},
			{Header: tar.Header{Typeflag: tar.TypeLink, Name: "rootfs/passwd", Linkname: "../etc/passwd"}},
			File("dup", 0o644, "first"),
			File("dup", 0o644, "second"),
			Dir("rootfs/", 0o700),
		},
	}
	data, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	es := readTar(t, data)
	want := []string{"rootfs/../../evil", "/etc/abs", "rootfs/dev/mem", "rootfs/passwd", "rootfs/dup", "rootfs/dup", "rootfs/"}
	if len(es) != len(want) {
		t.Fatalf("got %d entries, want %d (no manifest, no added rootfs)", len(es), len(want))
	}
	for i, e := range es {
		if e.hdr.Name != want[i] {
			t.Errorf("entry %d: %q, want %q", i, e.hdr.Name, want[i])
		}
	}
	if !es[0].hdr.ModTime.Equal(own) {
		t.Errorf("own mtime replaced: %v", es[0].hdr.ModTime)
	}
	if es[2].hdr.Typeflag != tar.TypeChar || es[2].hdr.Devmajor != 1 {
		t.Errorf("device node: %+v", es[2].hdr)
	}
	if es[3].hdr.Linkname != "../etc/passwd" {
		t.Errorf("hardlink target changed: %q", es[3].hdr.Linkname)
	}
	if es[4].body != "first" || es[5].body != "second" {
		t.Errorf("duplicates: %q, %q", es[4].body, es[5].body)
	}

	// Sorting keeps duplicates in their given order.
	a.KeepOrder = false
	data, err = a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var dups []string
	for _, e := range readTar(t, data) {
		if e.hdr.Name == "rootfs/dup" {
			dups = append(dups, e.body)
		}
	}
	if strings.Join(dups, ",") != "first,second" {
		t.Errorf("sorted duplicates: %v", dups)
	}
}

func TestManifestJSON(t *testing.T) {
	iso := json.RawMessage(`{"name":"resource/memory","value":{"limit":"128M"}}`)
	data, err := ManifestJSON(Image{
		Name:          "example.com/app",
		Labels:        map[string]string{"arch": "aarch64", "version": "v1"},
		Exec:          []string{"/inspect"},
		User:          "1000",
		WorkingDir:    "/tmp",
		Env:           map[string]string{"Z": "26", "A": "1"},
		Ports:         []Port{{Name: "http", Protocol: "tcp", Port: 80}},
		MountPoints:   []MountPoint{{Name: "data", Path: "/data", ReadOnly: true}},
		Annotations:   map[string]string{"coreos.com/rkt/stage1/run": "/run"},
		Dependencies:  []Dependency{{ImageName: "example.com/base", Labels: map[string]string{"version": "2"}, ImageID: "sha512-abcd"}},
		PathWhitelist: []string{"/inspect"},
		Isolators:     []json.RawMessage{iso},
		EventHandlers: []EventHandler{{Name: "pre-start", Exec: []string{"/pre"}}, {Name: "post-stop", Exec: []string{"/post", "x"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var im schema.ImageManifest
	if err := im.UnmarshalJSON(data); err != nil {
		t.Fatalf("manifest does not validate: %v\n%s", err, data)
	}
	if string(im.ACKind) != "ImageManifest" || im.ACVersion.String() != "0.8.11" {
		t.Errorf("kind/version: %s %s", im.ACKind, im.ACVersion)
	}
	if osLabel, _ := im.Labels.Get("os"); osLabel != "linux" {
		t.Errorf("os label %q, want default linux", osLabel)
	}
	if arch, _ := im.Labels.Get("arch"); arch != "aarch64" {
		t.Errorf("arch label %q, want the given aarch64", arch)
	}
	app := im.App
	if app.User != "1000" || app.Group != "0" || app.WorkingDirectory != "/tmp" {
		t.Errorf("app user/group/dir: %q %q %q", app.User, app.Group, app.WorkingDirectory)
	}
	if len(app.Environment) != 2 || app.Environment[0].Name != "A" {
		t.Errorf("environment not sorted: %+v", app.Environment)
	}
	if len(app.Isolators) != 1 || app.Isolators[0].Name != "resource/memory" || app.Isolators[0].Value() == nil {
		t.Errorf("isolators: %+v", app.Isolators)
	}
	if eh := app.EventHandlers; len(eh) != 2 || eh[0].Name != "pre-start" || eh[1].Exec[1] != "x" {
		t.Errorf("event handlers: %+v", eh)
	}
	if len(im.Dependencies) != 1 || im.Dependencies[0].ImageID.String() != "sha512-abcd" {
		t.Errorf("dependencies: %+v", im.Dependencies)
	}
	if v, _ := im.Annotations.Get("coreos.com/rkt/stage1/run"); v != "/run" {
		t.Errorf("annotation: %q", v)
	}

	// No app field: no app section (a base image).
	data, err = ManifestJSON(Image{Name: "example.com/base"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"app"`) {
		t.Errorf("base image has an app: %s", data)
	}

	for _, bad := range []Image{
		{Name: "Not Valid"},
		{Name: "example.com/x", Labels: map[string]string{"name": "x"}},
		{Name: "example.com/x", Exec: []string{"/x"}, WorkingDir: "relative"},
		{Name: "example.com/x", Isolators: []json.RawMessage{json.RawMessage(`{"name":"resource/memory","value":{"limit":"lots"}}`)}},
		{Name: "example.com/x", Dependencies: []Dependency{{ImageName: "example.com/y", ImageID: "md5-00"}}},
		{Name: "example.com/x", Ports: []Port{{Name: "HTTP!", Protocol: "tcp", Port: 80}}},
		{Name: "example.com/x", EventHandlers: []EventHandler{{Name: "pre-stop", Exec: []string{"/x"}}}},
	} {
		if _, err := ManifestJSON(bad); err == nil {
			t.Errorf("ManifestJSON(%+v) accepted an invalid image", bad)
		}
	}
}

func TestEntryHelpersNames(t *testing.T) {
	for in, want := range map[string]string{
		"etc/passwd":    "rootfs/etc/passwd",
		"/etc/passwd":   "rootfs/etc/passwd",
		"rootfs/etc":    "rootfs/etc",
		"rootfs":        "rootfs",
		"manifest":      "manifest",
		"rootfsx":       "rootfs/rootfsx",
		"../escape":     "rootfs/../escape",
		"rootfs/../esc": "rootfs/../esc",
	} {
		if got := File(in, 0o644, "").Header.Name; got != want {
			t.Errorf("File(%q) name %q, want %q", in, got, want)
		}
	}
	if h := Hardlink("a", "../../etc/shadow").Header; h.Linkname != "rootfs/../../etc/shadow" {
		t.Errorf("hardlink target %q", h.Linkname)
	}
}

func TestDirEntries(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("body"), 0o640))
	must(os.WriteFile(filepath.Join(dir, "suid"), []byte("s"), 0o755))
	must(os.Chmod(filepath.Join(dir, "suid"), os.ModeSetuid|0o755))
	must(os.Symlink("a/b/f", filepath.Join(dir, "link")))
	es, err := DirEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	var names []string
	for _, e := range es {
		got[e.Header.Name] = e
		names = append(names, e.Header.Name)
		if e.Header.Uid != 0 || e.Header.Gid != 0 || !e.Header.ModTime.IsZero() || e.Header.Uname != "" {
			t.Errorf("%s: owner/time not neutral: %+v", e.Header.Name, e.Header)
		}
	}
	if want := "rootfs/a rootfs/a/b rootfs/a/b/f rootfs/link rootfs/suid"; strings.Join(names, " ") != want {
		t.Fatalf("names %v, want %s", names, want)
	}
	if e := got["rootfs/a/b/f"]; string(e.Body) != "body" || e.Header.Mode != 0o640 || e.Header.Size != 4 {
		t.Errorf("file entry: %+v %q", e.Header, e.Body)
	}
	if e := got["rootfs/a"]; e.Header.Typeflag != tar.TypeDir || e.Header.Mode != 0o750 {
		t.Errorf("dir entry: %+v", e.Header)
	}
	if e := got["rootfs/suid"]; e.Header.Mode != 0o4755 {
		t.Errorf("setuid mode %o", e.Header.Mode)
	}
	if e := got["rootfs/link"]; e.Header.Typeflag != tar.TypeSymlink || e.Header.Linkname != "a/b/f" {
		t.Errorf("symlink entry: %+v", e.Header)
	}

	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	if _, err := DirEntries(dir); err == nil || !strings.Contains(err.Error(), "unsupported file type") {
		t.Errorf("fifo: err = %v", err)
	}
}

func TestBusyboxEntries(t *testing.T) {
	if _, err := findBusybox(); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	es, err := BusyboxEntries()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range es {
		got[e.Header.Name] = e
	}
	if e := got["rootfs/bin/sh"]; e.Header.Typeflag != tar.TypeSymlink || e.Header.Linkname != "busybox" {
		t.Errorf("/bin/sh: %+v", e.Header)
	}
	if e := got["rootfs/bin/busybox"]; e.Header.Mode != 0o755 || len(e.Body) < 100000 {
		t.Errorf("/bin/busybox: mode %o, %d bytes", e.Header.Mode, len(e.Body))
	}
	if e := got["rootfs/tmp"]; e.Header.Mode != 0o1777 || e.Header.Typeflag != tar.TypeDir {
		t.Errorf("/tmp: %+v", e.Header)
	}
	if !strings.Contains(string(got["rootfs/etc/passwd"].Body), "user:x:1000:1000:") {
		t.Errorf("passwd: %s", got["rootfs/etc/passwd"].Body)
	}
	if !strings.Contains(string(got["rootfs/etc/group"].Body), "extra:x:1001:") {
		t.Errorf("group: %s", got["rootfs/etc/group"].Body)
	}
	// Callers get their own slice.
	es[0].Header.Name = "changed"
	again, _ := BusyboxEntries()
	if again[0].Header.Name == "changed" {
		t.Error("BusyboxEntries shares its slice between callers")
	}
}
