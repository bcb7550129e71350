package storetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/rkt/rkt/imagestore"
)

// Entry is one entry of a test layer.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg when 0
	Body     string
	Linkname string
	Mode     int64
}

// File, Dir and Whiteout make entries.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }
func Dir(name string) Entry        { return Entry{Name: name, Type: tar.TypeDir, Mode: 0o755} }
func Whiteout(name string) Entry   { return Entry{Name: name} }

// TestLayer is a layer blob with its digests.
type TestLayer struct {
	Blob   []byte // gzip-compressed tar
	Desc   imagestore.LayerDesc
	Opened int // how often Open was called
}

var epoch = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// NewLayer builds a gzip-compressed layer of entries.
func NewLayer(t testing.TB, entries ...Entry) *TestLayer {
	t.Helper()
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, ModTime: epoch, Linkname: e.Linkname}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	return &TestLayer{Blob: gz.Bytes(), Desc: imagestore.LayerDesc{Digest: Digest(gz.Bytes()), DiffID: Digest(plain.Bytes()),
		MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}}
}

// Digest is the sha256: key of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return imagestore.SHA256KeyPrefix + hex.EncodeToString(sum[:])
}

// Open is the open function PutLayer takes; it counts its calls.
func (l *TestLayer) Open() (io.ReadCloser, error) {
	l.Opened++
	return io.NopCloser(bytes.NewReader(l.Blob)), nil
}
