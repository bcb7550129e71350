package fetch

import (
	"bytes"
	"crypto/x509"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// payload returns n pseudo-random bytes that differ per seed.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// counter counts requests reaching a handler.
type counter struct{ n atomic.Int64 }

func (c *counter) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		h(w, r)
	}
}

// serveBlob serves data with an ETag, honouring Range/If-Range and
// If-None-Match the way a real file server does.
func serveBlob(data []byte, etag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		http.ServeContent(w, r, "image.aci", time.Time{}, bytes.NewReader(data))
	}
}

// cutAfter writes the headers (full Content-Length) and the first n bytes of
// data, then drops the connection.
func cutAfter(t *testing.T, w http.ResponseWriter, data []byte, n int) {
	t.Helper()
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data[:n])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijacking the connection: %v", err)
		return
	}
	conn.Close()
}

func rootsOf(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// listDir returns the sorted names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// assertFile checks that path holds want.
func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the download: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes that differ from the %d served", path, len(got), len(want))
	}
}

// assertOnly checks that dir holds exactly the files named (base names).
func assertOnly(t *testing.T, dir string, paths ...string) {
	t.Helper()
	var want []string
	for _, p := range paths {
		want = append(want, filepath.Base(p))
	}
	sort.Strings(want)
	got := listDir(t, dir)
	if len(got) != len(want) {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s holds %v, want %v", dir, got, want)
		}
	}
}
