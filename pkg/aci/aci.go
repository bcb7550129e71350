// Package aci reads App Container Images: it detects the compression of an
// image by its content, decompresses it as a stream, and parses and
// validates image manifests with the appc/spec types. It does not touch the
// file system; extraction lives in package tarx.
package aci

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/rkt/rkt/pkg/appcjson"
)

// Compression is a detected compression format.
type Compression string

// The compressions an image may come in.
const (
	None  Compression = "none"
	Gzip  Compression = "gzip"
	Bzip2 Compression = "bzip2"
	Xz    Compression = "xz"
	Zstd  Compression = "zstd"
)

// ErrInvalid classifies every error about an image's content (as opposed to
// I/O errors reading it).
var ErrInvalid = errors.New("invalid image")

// Invalidf returns an error of class ErrInvalid.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Detect names the compression of a stream from its first bytes.
func Detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte("BZh")):
		return Bzip2
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return Xz
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return None
}

// Decompress wraps r in the decompressor its content calls for. The
// returned closer releases decompressor resources (not r).
func Decompress(r io.Reader) (io.Reader, Compression, func(), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, "", nil, err
	}
	if len(head) == 0 {
		return nil, "", nil, Invalidf("the file is empty")
	}
	c := Detect(head)
	nop := func() {}
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, nil, Invalidf("corrupt gzip data: %v", err)
		}
		return &errClass{r: zr, c: c}, c, func() { zr.Close() }, nil
	case Bzip2:
		return &errClass{r: bzip2.NewReader(br), c: c}, c, nop, nil
	case Xz:
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, c, nil, Invalidf("corrupt xz data: %v", err)
		}
		return &errClass{r: zr, c: c}, c, nop, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, c, nil, Invalidf("corrupt zstd data: %v", err)
		}
		return &errClass{r: zr, c: c}, c, zr.Close, nil
	}
	return br, None, nop, nil
}

// errClass turns decompressor errors (other than EOF) into ErrInvalid
// errors that say which compression was broken.
type errClass struct {
	r io.Reader
	c Compression
}

func (e *errClass) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, Invalidf("%s data is truncated", e.c)
		}
		return n, Invalidf("corrupt %s data: %v", e.c, err)
	}
	return n, err
}

// MaxManifestSize bounds the manifest entry of an image.
const MaxManifestSize = 1 << 20

// ParseManifest parses and validates an image manifest.
func ParseManifest(data []byte) (*schema.ImageManifest, error) {
	var probe struct {
		ACKind    string `json:"acKind"`
		ACVersion string `json:"acVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, Invalidf("manifest is not valid JSON: %v", err)
	}
	if probe.ACKind != string(schema.ImageManifestKind) {
		return nil, Invalidf("manifest has acKind %q, want %q", probe.ACKind, schema.ImageManifestKind)
	}
	v, err := types.NewSemVer(probe.ACVersion)
	if err != nil {
		return nil, Invalidf("manifest acVersion %q is not a version: %v", probe.ACVersion, err)
	}
	if v.LessThanExact(types.SemVer{Major: 0, Minor: 5}) || schema.AppContainerVersion.LessThanExact(*v) {
		return nil, Invalidf("manifest acVersion %s is not supported: this rkt reads appc 0.5.0 to %s", v, schema.AppContainerVersion)
	}
	var m schema.ImageManifest
	if err := appcjson.Unmarshal(data, &m); err != nil {
		return nil, Invalidf("manifest is not valid: %v", err)
	}
	return &m, nil
}

// NameLabels is an image reference by name: what the user asked for.
type NameLabels struct {
	Name   string
	Labels map[string]string
}

func (n NameLabels) String() string {
	var b strings.Builder
	b.WriteString(n.Name)
	if v, ok := n.Labels["version"]; ok {
		b.WriteString(":" + v)
	}
	for _, k := range sortedKeys(n.Labels) {
		if k != "version" {
			fmt.Fprintf(&b, ",%s=%s", k, n.Labels[k])
		}
	}
	return b.String()
}

// Matches reports whether a manifest has the asked name and every asked
// label, with an error saying what differs.
func (n NameLabels) Matches(m *schema.ImageManifest) error {
	if n.Name != "" && m.Name.String() != n.Name {
		return Invalidf("image is named %q, but %q was asked for", m.Name, n.Name)
	}
	for _, k := range sortedKeys(n.Labels) {
		want := n.Labels[k]
		got, ok := m.GetLabel(k)
		if !ok {
			return Invalidf("image %s has no label %s (asked for %s=%s)", m.Name, k, k, want)
		}
		if got != want {
			return Invalidf("image %s has label %s=%s, but %s=%s was asked for", m.Name, k, got, k, want)
		}
	}
	return nil
}

// ParseRef parses "name[:version][,label=value...]".
func ParseRef(s string) (NameLabels, error) {
	parts := strings.Split(s, ",")
	name := parts[0]
	labels := map[string]string{}
	if i := strings.LastIndex(name, ":"); i >= 0 {
		labels["version"] = name[i+1:]
		name = name[:i]
	}
	if _, err := types.NewACIdentifier(name); err != nil {
		return NameLabels{}, fmt.Errorf("%q is not a valid image name: %v", name, err)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return NameLabels{}, fmt.Errorf("bad label %q in %q: want label=value", p, s)
		}
		labels[k] = v
	}
	if v, ok := labels["version"]; ok && v == "" {
		return NameLabels{}, fmt.Errorf("empty version in %q", s)
	}
	return NameLabels{Name: name, Labels: labels}, nil
}
