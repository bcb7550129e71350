package aci_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/appc/spec/schema"

	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/tests/testutils"
)

var compressions = []struct {
	tc   testutils.Compression
	want aci.Compression
}{
	{testutils.CompressionNone, aci.None},
	{testutils.CompressionGzip, aci.Gzip},
	{testutils.CompressionBzip2, aci.Bzip2},
	{testutils.CompressionXz, aci.Xz},
	{testutils.CompressionZstd, aci.Zstd},
}

// sample returns an image, compressed as asked, and its uncompressed tar.
func sample(t *testing.T, c testutils.Compression) (data, plain []byte) {
	t.Helper()
	a := testutils.ACI{
		Image:   testutils.Image{Name: "example.com/sample", Labels: map[string]string{"version": "1.0"}},
		Entries: []testutils.Entry{testutils.File("etc/hello", 0o644, strings.Repeat("hello, world\n", 1000))},
	}
	var err error
	if plain, err = a.Bytes(); err != nil {
		t.Fatal(err)
	}
	a.Compression = c
	if data, err = a.Bytes(); err != nil {
		t.Fatal(err)
	}
	return data, plain
}

func TestDecompressEachFormat(t *testing.T) {
	for _, c := range compressions {
		t.Run(string(c.want), func(t *testing.T) {
			data, plain := sample(t, c.tc)
			if got := aci.Detect(data); got != c.want {
				t.Errorf("Detect = %s, want %s", got, c.want)
			}
			r, comp, closeFn, err := aci.Decompress(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			defer closeFn()
			if comp != c.want {
				t.Errorf("Decompress found %s, want %s", comp, c.want)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("decompressed %d bytes differ from the %d-byte tar", len(got), len(plain))
			}
		})
	}
}

func TestDetectByContentOnly(t *testing.T) {
	for head, want := range map[string]aci.Compression{
		"\x1f\x8b\x08":         aci.Gzip,
		"BZh9":                 aci.Bzip2,
		"\xfd7zXZ\x00":         aci.Xz,
		"\x28\xb5\x2f\xfd":     aci.Zstd,
		"manifest\x00\x00":     aci.None,
		"\xfd7zXZ":             aci.None, // too short for xz's magic
		"BZ":                   aci.None,
		"":                     aci.None,
		"\x1f\x8c":             aci.None,
		"\x28\xb5\x2f\xfe\x00": aci.None,
	} {
		if got := aci.Detect([]byte(head)); got != want {
			t.Errorf("Detect(%q) = %s, want %s", head, got, want)
		}
	}
}

// readAll decompresses data fully, returning the first error.
func readAll(data []byte) error {
	r, _, closeFn, err := aci.Decompress(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer closeFn()
	_, err = io.Copy(io.Discard, r)
	return err
}

func TestCorruptAndTruncated(t *testing.T) {
	for _, c := range compressions[1:] {
		t.Run(string(c.want), func(t *testing.T) {
			data, _ := sample(t, c.tc)
			truncated := data[:len(data)/2]
			if err := readAll(truncated); !errors.Is(err, aci.ErrInvalid) {
				t.Errorf("truncated %s: %v, want an ErrInvalid error", c.want, err)
			} else if !strings.Contains(err.Error(), string(c.want)) {
				t.Errorf("truncated %s: error %q does not name the compression", c.want, err)
			}
			corrupt := bytes.Clone(data)
			for i := len(corrupt) / 3; i < len(corrupt)/3+16; i++ {
				corrupt[i] ^= 0x5a
			}
			if err := readAll(corrupt); !errors.Is(err, aci.ErrInvalid) {
				t.Errorf("corrupt %s: %v, want an ErrInvalid error", c.want, err)
			}
			headOnly := data[:min(len(data), 8)]
			if err := readAll(headOnly); !errors.Is(err, aci.ErrInvalid) {
				t.Errorf("%s header only: %v, want an ErrInvalid error", c.want, err)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	if err := readAll(nil); !errors.Is(err, aci.ErrInvalid) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty input: %v, want an ErrInvalid error saying it is empty", err)
	}
}

type failAfter struct {
	data []byte
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadErrorsAreNotInvalid(t *testing.T) {
	ioErr := errors.New("disk on fire")
	data, _ := sample(t, testutils.CompressionGzip)
	r, _, closeFn, err := aci.Decompress(&failAfter{data: data[:len(data)/2], err: ioErr})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	_, err = io.Copy(io.Discard, r)
	if !errors.Is(err, ioErr) && !strings.Contains(err.Error(), ioErr.Error()) {
		t.Errorf("read error lost: %v", err)
	}
}

const goodManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app",
"labels":[{"name":"version","value":"1.2"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}]}`

func TestParseManifest(t *testing.T) {
	m, err := aci.ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	if m.Name.String() != "example.com/app" {
		t.Errorf("name %s", m.Name)
	}
	if v, _ := m.GetLabel("version"); v != "1.2" {
		t.Errorf("version label %q", v)
	}
	for _, v := range []string{"0.5.0", "0.8.0", "0.8.11"} {
		s := strings.Replace(goodManifest, "0.8.11", v, 1)
		if _, err := aci.ParseManifest([]byte(s)); err != nil {
			t.Errorf("acVersion %s refused: %v", v, err)
		}
	}
	bad := map[string]struct{ manifest, want string }{
		"not JSON":          {`{"acKind":`, "not valid JSON"},
		"empty":             {``, "not valid JSON"},
		"pod manifest":      {strings.Replace(goodManifest, "ImageManifest", "PodManifest", 1), `"PodManifest"`},
		"no kind":           {`{"acVersion":"0.8.11","name":"example.com/app"}`, "acKind"},
		"future version":    {strings.Replace(goodManifest, "0.8.11", "0.9.0", 1), "not supported"},
		"major version":     {strings.Replace(goodManifest, "0.8.11", "1.0.0", 1), "not supported"},
		"ancient version":   {strings.Replace(goodManifest, "0.8.11", "0.4.1", 1), "not supported"},
		"not a version":     {strings.Replace(goodManifest, "0.8.11", "latest", 1), "not a version"},
		"no version":        {`{"acKind":"ImageManifest","name":"example.com/app"}`, "acVersion"},
		"bad name":          {strings.Replace(goodManifest, "example.com/app", "Example.com/APP!", 1), "not valid"},
		"no name":           {`{"acKind":"ImageManifest","acVersion":"0.8.11"}`, "not valid"},
		"bad label":         {strings.Replace(goodManifest, `"name":"os"`, `"name":"OS!"`, 1), "not valid"},
		"JSON array":        {`[]`, "not valid JSON"},
		"wrong field types": {`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","labels":"x"}`, "not valid"},
	}
	for desc, c := range bad {
		_, err := aci.ParseManifest([]byte(c.manifest))
		if !errors.Is(err, aci.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an ErrInvalid error containing %q", desc, err, c.want)
		}
	}
}

func TestParseRefAndMatches(t *testing.T) {
	nl, err := aci.ParseRef("example.com/app:1.2,os=linux,channel=beta")
	if err != nil {
		t.Fatal(err)
	}
	if nl.Name != "example.com/app" || nl.Labels["version"] != "1.2" || nl.Labels["os"] != "linux" || nl.Labels["channel"] != "beta" {
		t.Errorf("ParseRef = %+v", nl)
	}
	if s := nl.String(); s != "example.com/app:1.2,channel=beta,os=linux" {
		t.Errorf("String = %q", s)
	}
	if nl, err := aci.ParseRef("example.com/app"); err != nil || len(nl.Labels) != 0 {
		t.Errorf("ParseRef without labels = %+v, %v", nl, err)
	}
	for _, bad := range []string{"", "Bad Name", "example.com/app:", "example.com/app,os", "example.com/app,=x"} {
		if nl, err := aci.ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) = %+v, want an error", bad, nl)
		}
	}

	var m schema.ImageManifest
	if err := m.UnmarshalJSON([]byte(goodManifest)); err != nil {
		t.Fatal(err)
	}
	ok := []string{"example.com/app", "example.com/app:1.2", "example.com/app:1.2,os=linux,arch=amd64"}
	for _, ref := range ok {
		nl, _ := aci.ParseRef(ref)
		if err := nl.Matches(&m); err != nil {
			t.Errorf("%s does not match: %v", ref, err)
		}
	}
	mismatch := map[string]string{
		"example.com/other":         `named "example.com/app", but "example.com/other"`,
		"example.com/app:1.3":       "version=1.2, but version=1.3",
		"example.com/app,os=darwin": "os=linux, but os=darwin",
		"example.com/app,channel=x": "no label channel",
	}
	for ref, want := range mismatch {
		nl, _ := aci.ParseRef(ref)
		err := nl.Matches(&m)
		if !errors.Is(err, aci.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an ErrInvalid error containing %q", ref, err, want)
		}
	}
	if err := (aci.NameLabels{}).Matches(&m); err != nil {
		t.Errorf("an empty reference must match anything: %v", err)
	}
}
