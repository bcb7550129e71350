package tests

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

func TestFetchLocalFileEachCompression(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	a := smallACI("example.com/app", "1.0", "hello")
	want := imageID(t, a)
	for _, comp := range []testutils.Compression{testutils.CompressionNone, testutils.CompressionGzip,
		testutils.CompressionBzip2, testutils.CompressionXz, testutils.CompressionZstd} {
		a.Compression = comp
		p := writeACI(t, dir, "app-"+string(comp)+".aci", a)
		r := c.Run("fetch", insecureImage, p)
		if r.Exit != 0 {
			t.Fatalf("%s", describeResult([]string{"fetch", p}, r))
		}
		id := strings.TrimSpace(r.Stdout)
		if !shortIDRe.MatchString(id) || !strings.HasPrefix(want, id) {
			t.Errorf("%s: fetch printed %q, want the 12-hex form of %s", comp, id, want)
		}
		if !strings.Contains(r.Stderr, "not verified") {
			t.Errorf("%s: no warning that the signature was not verified; stderr: %s", comp, r.Stderr)
		}
	}
	if full := fetchOK(t, c, "--full", "file://"+filepath.Join(dir, "app-xz.aci")); len(full) != 1 || full[0] != want {
		t.Errorf("fetch --full of a file:// URL printed %v, want %s", full, want)
	}
	_, imgs := listImages(t, c)
	if len(imgs) != 1 || imgs[0].ID != want || imgs[0].Name != "example.com/app" || imgs[0].Labels["version"] != "1.0" {
		t.Errorf("image list = %+v, want the one image %s", imgs, want)
	}
}

func TestFetchNeedsInsecureImage(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	fetchOK(t, c, writeACI(t, dir, "seed.aci", smallACI("example.com/seed", "1", "seed")))
	p := writeACI(t, dir, "app.aci", smallACI("example.com/app", "1", "x"))
	before := captureStore(t, c)
	r := c.Run("fetch", p)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "--insecure-options=image") || !strings.Contains(r.Stderr, p) {
		t.Errorf("unsigned fetch without --insecure-options=image: %s", describeResult([]string{"fetch", p}, r))
	}
	assertStoreUnchanged(t, c, before)
}

func TestFetchArgumentsAndPolicies(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	a, b := smallACI("example.com/a", "1.0", "a"), smallACI("example.com/b", "2.0", "b")
	ids := fetchOK(t, c, "--full", writeACI(t, dir, "a.aci", a), writeACI(t, dir, "b.aci", b))
	if len(ids) != 2 || ids[0] != imageID(t, a) || ids[1] != imageID(t, b) {
		t.Fatalf("fetch of two files printed %v, want %s and %s", ids, imageID(t, a), imageID(t, b))
	}
	// By ID (any unique prefix) and by name, from the store.
	for _, ref := range []string{ids[0], ids[0][:19], ids[0][:11]} {
		if got := fetchOK(t, c, "--full", ref); len(got) != 1 || got[0] != ids[0] {
			t.Errorf("fetch %s printed %v, want %s", ref, got, ids[0])
		}
	}
	for _, policy := range []string{"new", "never"} {
		for ref, want := range map[string]string{"example.com/a": ids[0], "example.com/a:1.0": ids[0], "example.com/b:2.0,os=linux": ids[1]} {
			if got := fetchOK(t, c, "--full", "--pull-policy="+policy, ref); len(got) != 1 || got[0] != want {
				t.Errorf("fetch --pull-policy=%s %s printed %v, want %s", policy, ref, got, want)
			}
		}
	}
	before := captureStore(t, c)
	c.MustFail(254, "in the store", "fetch", insecureImage, "--pull-policy=never", "example.com/a:9.9")
	c.MustFail(254, "does not exist", "fetch", insecureImage, filepath.Join(dir, "missing.aci"))
	c.MustFail(254, "pull policy", "fetch", insecureImage, "--pull-policy=sometimes", "example.com/a")
	c.MustFail(254, "max-size", "fetch", insecureImage, "--max-size=lots", "example.com/a")
	c.MustFail(254, "scheme", "fetch", insecureImage, "ftp://127.0.0.1/x.aci")
	assertStoreUnchanged(t, c, before)
}

// imageServer serves ACIs on 127.0.0.1 and records the requests.
type imageServer struct {
	mu       sync.Mutex
	files    map[string][]byte // path -> content
	etags    map[string]string
	cache    map[string]string // path -> Cache-Control
	requests []*http.Request
	srv      *httptest.Server
}

func newImageServer(t *testing.T, tls bool) *imageServer {
	s := &imageServer{files: map[string][]byte{}, etags: map[string]string{}, cache: map[string]string{}}
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	if tls {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	if !strings.Contains(s.srv.URL, "127.0.0.1") {
		t.Fatalf("test server at %s, want 127.0.0.1 only", s.srv.URL)
	}
	return s
}

func (s *imageServer) put(path string, data []byte, etag, cacheControl string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path], s.etags[path], s.cache[path] = data, etag, cacheControl
	return s.srv.URL + path
}

func (s *imageServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	data, ok := s.files[r.URL.Path]
	etag, cc := s.etags[r.URL.Path], s.cache[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// take returns and forgets the requests so far.
func (s *imageServer) take() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

func TestFetchHTTPCacheAndPolicies(t *testing.T) {
	c := newImageCtx(t)
	srv := newImageServer(t, false)
	v1, v2 := smallACI("example.com/web", "1", "v1"), smallACI("example.com/web", "2", "v2")
	b1, _ := v1.Bytes()
	b2, _ := v2.Bytes()
	url := srv.put("/images/web.aci", b1, `"v1"`, "")
	http := "--insecure-options=http,image"

	fetchOK(t, c, writeACI(t, t.TempDir(), "seed.aci", smallACI("example.com/seed", "1", "s")))
	before := captureStore(t, c)
	r := c.Run("fetch", insecureImage, url)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "--insecure-options=http") {
		t.Errorf("http:// without --insecure-options=http: %s", describeResult([]string{"fetch", url}, r))
	}
	if n := len(srv.take()); n != 0 {
		t.Errorf("%d requests sent for a refused http:// URL", n)
	}
	assertStoreUnchanged(t, c, before)

	// First fetch downloads.
	out := c.MustRun("fetch", http, "--full", url)
	if strings.TrimSpace(out) != imageID(t, v1) {
		t.Fatalf("fetch printed %q, want %s", out, imageID(t, v1))
	}
	if reqs := srv.take(); len(reqs) != 1 || reqs[0].Header.Get("If-None-Match") != "" {
		t.Errorf("first fetch: %d requests, want one unconditional GET", len(reqs))
	}
	_, imgs := listImages(t, c)
	if len(imgs) != 2 {
		t.Fatalf("image list has %d images, want 2", len(imgs))
	}

	// update: revalidated with the ETag, 304, nothing downloaded.
	if out := c.MustRun("fetch", http, "--full", url); strings.TrimSpace(out) != imageID(t, v1) {
		t.Errorf("revalidated fetch printed %q", out)
	}
	reqs := srv.take()
	if len(reqs) != 1 || reqs[0].Header.Get("If-None-Match") != `"v1"` {
		t.Errorf("update fetch: %d requests (If-None-Match %q), want one revalidation with the ETag", len(reqs), func() string {
			if len(reqs) > 0 {
				return reqs[0].Header.Get("If-None-Match")
			}
			return ""
		}())
	}
	// new and never: the store answers, no traffic.
	for _, policy := range []string{"new", "never"} {
		if out := c.MustRun("fetch", http, "--full", "--pull-policy="+policy, url); strings.TrimSpace(out) != imageID(t, v1) {
			t.Errorf("--pull-policy=%s printed %q", policy, out)
		}
		if n := len(srv.take()); n != 0 {
			t.Errorf("--pull-policy=%s sent %d requests for an image in the store", policy, n)
		}
	}
	// A new version behind the same URL is fetched by update.
	srv.put("/images/web.aci", b2, `"v2"`, "")
	if out := c.MustRun("fetch", http, "--full", url); strings.TrimSpace(out) != imageID(t, v2) {
		t.Errorf("fetch after the image changed printed %q, want %s", out, imageID(t, v2))
	}
	srv.take()
	if _, imgs := listImages(t, c); len(imgs) != 3 {
		t.Errorf("image list has %d images, want 3", len(imgs))
	}

	// Cache-Control: max-age spares even the revalidation.
	cached := srv.put("/images/cached.aci", b1, "", "public, max-age=3600")
	fetchOK(t, c, "--insecure-options=http", cached)
	srv.take()
	if got := fetchOK(t, c, "--insecure-options=http", "--full", cached); len(got) != 1 || got[0] != imageID(t, v1) {
		t.Errorf("max-age fetch printed %v", got)
	}
	if n := len(srv.take()); n != 0 {
		t.Errorf("fetch within max-age sent %d requests, want none", n)
	}

	// never with a URL that was never fetched fails without traffic.
	before = captureStore(t, c)
	missing := srv.put("/images/never.aci", b2, "", "")
	c.MustFail(254, "not in the store", "fetch", http, "--pull-policy=never", missing)
	c.MustFail(254, "404", "fetch", http, srv.srv.URL+"/images/nothing.aci")
	srv.take()
	assertStoreUnchanged(t, c, before)
}

func TestFetchHTTPS(t *testing.T) {
	c := newImageCtx(t)
	srv := newImageServer(t, true)
	a := smallACI("example.com/tls", "1", "tls")
	data, _ := a.Bytes()
	fetchOK(t, c, writeACI(t, t.TempDir(), "seed.aci", smallACI("example.com/seed", "1", "s")))

	before := captureStore(t, c)
	url := srv.put("/a.aci", data, "", "")
	r := c.Run("fetch", insecureImage, url)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "certificate") || !strings.Contains(r.Stderr, "--insecure-options=tls") {
		t.Errorf("fetch from an untrusted server: %s", describeResult([]string{"fetch", url}, r))
	}
	assertStoreUnchanged(t, c, before)

	if got := fetchOK(t, c, "--insecure-options=tls", "--full", url); len(got) != 1 || got[0] != imageID(t, a) {
		t.Errorf("fetch with --insecure-options=tls printed %v", got)
	}
	if r := c.Run("fetch", "--insecure-options=tls,image", srv.srv.URL+"/nothing.aci"); !strings.Contains(r.Stderr, "TLS certificates are not checked") {
		t.Errorf("no warning for --insecure-options=tls: %s", r.Stderr)
	}

	// The CLI has no flag for extra CA roots; Go's SSL_CERT_FILE is honoured.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	url2 := srv.put("/b.aci", data, "", "")
	r = runWithEnv(t, c, []string{"SSL_CERT_FILE=" + ca}, "fetch", insecureImage, "--full", url2)
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != imageID(t, a) {
		t.Errorf("fetch trusting the test CA via SSL_CERT_FILE: %s", describeResult([]string{"fetch", url2}, r))
	}
}

// TestFetchResumesDownload: the first transfer breaks after 1 MiB; the next
// fetch continues it with a Range request instead of starting over.
func TestFetchResumesDownload(t *testing.T) {
	c := newImageCtx(t)
	big := testutils.ACI{Image: testutils.Image{Name: "example.com/big"},
		Entries: []testutils.Entry{testutils.File("data", 0o644, string(pseudoRandom(4<<20, 1)))}}
	data, err := big.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ranges []string
	broken := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		cut := broken
		broken = false
		mu.Unlock()
		w.Header().Set("ETag", `"big-1"`)
		if cut {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:1<<20])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-body
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	url := srv.URL + "/big.aci"

	r := c.Run("fetch", "--insecure-options=http,image", url)
	if r.Exit != 254 || !strings.Contains(r.Stderr, "resumed") {
		t.Fatalf("broken transfer: %s", describeResult([]string{"fetch", url}, r))
	}
	if _, imgs := listImages(t, c); len(imgs) != 0 {
		t.Fatalf("a broken download is listed: %+v", imgs)
	}
	r = c.Run("fetch", "--insecure-options=http,image", "--full", url)
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != imageID(t, big) {
		t.Fatalf("resumed fetch: %s", describeResult([]string{"fetch", url}, r))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 2 || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Errorf("Range headers of the requests: %q, want the second to continue after the first's bytes", ranges)
	}
	exported := filepath.Join(t.TempDir(), "out.aci")
	c.MustRun("image", "export", imageID(t, big), exported)
	if got, _ := os.ReadFile(exported); !bytes.Equal(got, data) {
		t.Error("the resumed image differs from the served one")
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Dir, "cas", "tmp")); len(ents) != 0 {
		t.Errorf("cas/tmp not empty after the resumed fetch: %v", ents)
	}
}

// pseudoRandom returns n incompressible, reproducible bytes.
func pseudoRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := 0; i+8 <= n; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := 0; j < 8; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

func TestFetchDependencies(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	base := testutils.ACI{Image: testutils.Image{Name: "example.com/base", Labels: map[string]string{"version": "1"}},
		Entries: []testutils.Entry{testutils.File("bin/tool", 0o755, "tool"), testutils.File("etc/conf", 0o644, "base"),
			testutils.File("etc/extra", 0o644, "extra")}}
	top := testutils.ACI{Image: testutils.Image{Name: "example.com/top",
		Dependencies:  []testutils.Dependency{{ImageName: "example.com/base", Labels: map[string]string{"version": "1"}}},
		PathWhitelist: []string{"/bin/tool", "/etc/conf", "/app"}},
		Entries: []testutils.Entry{testutils.File("app", 0o755, "app"), testutils.File("etc/conf", 0o644, "top")}}
	writeACI(t, dir, "base-1.aci", base)
	topPath := writeACI(t, dir, "top.aci", top)

	ids := fetchOK(t, c, "--full", topPath)
	if len(ids) != 1 || ids[0] != imageID(t, top) {
		t.Fatalf("fetch printed %v, want only the top image %s", ids, imageID(t, top))
	}
	_, imgs := listImages(t, c)
	got := map[string]bool{}
	for _, i := range imgs {
		got[i.ID] = true
	}
	if len(imgs) != 2 || !got[imageID(t, base)] || !got[imageID(t, top)] {
		t.Fatalf("image list %+v, want top and its dependency", imgs)
	}
	out := filepath.Join(t.TempDir(), "render")
	c.MustRun("image", "render", "--rootfs-only", ids[0], out)
	for p, want := range map[string]string{"bin/tool": "tool", "etc/conf": "top", "app": "app"} {
		if b, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(b) != want {
			t.Errorf("rendered %s = %q, %v; want %q", p, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "etc/extra")); !os.IsNotExist(err) {
		t.Errorf("etc/extra is not in the pathWhitelist but was rendered (%v)", err)
	}
	c.MustRun("image", "verify", ids[0])

	// Over HTTP the dependency is looked up next to the image too.
	c2 := newImageCtx(t)
	srv := newImageServer(t, false)
	baseBytes, _ := base.Bytes()
	topBytes, _ := top.Bytes()
	srv.put("/repo/base-1.aci", baseBytes, "", "")
	url := srv.put("/repo/top.aci", topBytes, "", "")
	if ids := fetchOK(t, c2, "--insecure-options=http", "--full", url); len(ids) != 1 || ids[0] != imageID(t, top) {
		t.Errorf("http fetch printed %v", ids)
	}
	if _, imgs := listImages(t, c2); len(imgs) != 2 {
		t.Errorf("http fetch stored %d images, want 2", len(imgs))
	}
}
