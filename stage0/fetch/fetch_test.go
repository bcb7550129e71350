package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDownloadOK(t *testing.T) {
	data := payload(300<<10, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=120")
		serveBlob(data, `"v1"`)(w, r)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	before := time.Now()
	url := srv.URL + "/images/app.aci"
	res, err := Download(context.Background(), url, nil, Options{TmpDir: tmp, RootCAs: rootsOf(srv)})
	if err != nil {
		t.Fatal(err)
	}
	if res.NotModified {
		t.Fatal("NotModified on a first download")
	}
	if filepath.Dir(res.Path) != tmp {
		t.Errorf("result %s is not in TmpDir %s", res.Path, tmp)
	}
	assertFile(t, res.Path, data)
	if res.Size != int64(len(data)) {
		t.Errorf("Size = %d, want %d", res.Size, len(data))
	}
	r := res.Remote
	if r.URL != url || r.ETag != `"v1"` || r.MaxAge != 120 || r.DownloadTime.Before(before) || r.BlobKey != "" {
		t.Errorf("Remote = %+v", r)
	}
	assertOnly(t, tmp, res.Path)
}

func Test404(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/y.aci"
	_, err := Download(context.Background(), url, nil, Options{TmpDir: tmp, RootCAs: rootsOf(srv)})
	if err == nil {
		t.Fatal("no error for 404")
	}
	if want := "fetching " + url + ": 404 Not Found"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Errorf("error %v is not an *HTTPError with status 404", err)
	}
	assertOnly(t, tmp)
}

func TestPlainHTTP(t *testing.T) {
	data := payload(1000, 2)
	var c counter
	srv := httptest.NewServer(c.wrap(serveBlob(data, "")))
	defer srv.Close()
	tmp := t.TempDir()

	_, err := Download(context.Background(), srv.URL+"/a.aci", nil, Options{TmpDir: tmp})
	if !errors.Is(err, ErrInsecureHTTP) {
		t.Fatalf("error = %v, want ErrInsecureHTTP", err)
	}
	if !strings.Contains(err.Error(), "--insecure-options=http") {
		t.Errorf("error %q does not say which option allows http", err)
	}
	if c.n.Load() != 0 {
		t.Errorf("a refused http URL still made %d requests", c.n.Load())
	}
	assertOnly(t, tmp)

	res, err := Download(context.Background(), srv.URL+"/a.aci", nil, Options{TmpDir: tmp, InsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
}

func TestTLSVerification(t *testing.T) {
	data := payload(1000, 3)
	srv := httptest.NewTLSServer(serveBlob(data, ""))
	defer srv.Close()
	tmp := t.TempDir()
	ctx := context.Background()

	_, err := Download(ctx, srv.URL+"/a.aci", nil, Options{TmpDir: tmp})
	if err == nil {
		t.Fatal("a certificate from an unknown authority was accepted")
	}
	if !strings.Contains(err.Error(), "--insecure-options=tls") {
		t.Errorf("error %q does not mention --insecure-options=tls", err)
	}
	assertOnly(t, tmp)

	res, err := Download(ctx, srv.URL+"/a.aci", nil, Options{TmpDir: tmp, RootCAs: rootsOf(srv)})
	if err != nil {
		t.Fatalf("with the server's root: %v", err)
	}
	assertFile(t, res.Path, data)

	res, err = Download(ctx, srv.URL+"/a.aci", nil, Options{TmpDir: tmp, InsecureTLS: true})
	if err != nil {
		t.Fatalf("with InsecureTLS: %v", err)
	}
	assertFile(t, res.Path, data)
}

func TestETagNotModified(t *testing.T) {
	data := payload(5000, 4)
	var c counter
	srv := httptest.NewTLSServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=30")
		if r.Header.Get("If-None-Match") == `"v2"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v2"`)
		w.Write(data)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/a.aci"
	opts := Options{TmpDir: tmp, RootCAs: rootsOf(srv)}
	old := time.Now().Add(-time.Hour)

	prev := &Remote{URL: url, ETag: `"v2"`, MaxAge: 10, DownloadTime: old, BlobKey: "sha512-abc"}
	res, err := Download(context.Background(), url, prev, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NotModified || res.Path != "" {
		t.Fatalf("result = %+v, want NotModified with no path", res)
	}
	r := res.Remote
	if r.ETag != `"v2"` || r.MaxAge != 30 || r.BlobKey != "sha512-abc" || !r.DownloadTime.After(old) || r.URL != url {
		t.Errorf("refreshed Remote = %+v", r)
	}
	if c.n.Load() != 1 {
		t.Errorf("%d requests, want 1", c.n.Load())
	}
	assertOnly(t, tmp)

	// A stale ETag gets the new content.
	prev.ETag = `"v1"`
	res, err = Download(context.Background(), url, prev, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.NotModified {
		t.Fatal("NotModified for a changed ETag")
	}
	assertFile(t, res.Path, data)
	if res.Remote.ETag != `"v2"` {
		t.Errorf("ETag = %q, want the server's", res.Remote.ETag)
	}
}

func TestMaxAgeFresh(t *testing.T) {
	data := payload(100, 5)
	var c counter
	srv := httptest.NewTLSServer(c.wrap(serveBlob(data, `"x"`)))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/a.aci"
	opts := Options{TmpDir: tmp, RootCAs: rootsOf(srv)}

	prev := &Remote{URL: url, ETag: `"x"`, MaxAge: 60, DownloadTime: time.Now().Add(-30 * time.Second), BlobKey: "k"}
	res, err := Download(context.Background(), url, prev, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NotModified || res.Remote != *prev {
		t.Errorf("result = %+v, want NotModified with prev unchanged", res)
	}
	if c.n.Load() != 0 {
		t.Errorf("a fresh cache entry made %d requests", c.n.Load())
	}

	prev.DownloadTime = time.Now().Add(-61 * time.Second)
	res, err = Download(context.Background(), url, prev, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.n.Load() != 1 || !res.NotModified {
		t.Errorf("expired entry: %d requests, NotModified=%v; want 1 request answered 304", c.n.Load(), res.NotModified)
	}
}

func TestDeferred(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	_, err := Download(context.Background(), srv.URL+"/a.aci.asc", nil, Options{TmpDir: tmp, RootCAs: rootsOf(srv)})
	if !errors.Is(err, ErrDeferred) {
		t.Fatalf("error = %v, want ErrDeferred", err)
	}
	assertOnly(t, tmp)
}

func TestBadURLs(t *testing.T) {
	tmp := t.TempDir()
	for _, u := range []string{"ftp://example.com/a.aci", "file:///tmp/a.aci", "docker://busybox", "https:///nohost", "://bad"} {
		if _, err := Download(context.Background(), u, nil, Options{TmpDir: tmp}); err == nil {
			t.Errorf("%s: no error", u)
		}
	}
	if _, err := Download(context.Background(), "https://127.0.0.1:1/a", nil, Options{}); err == nil || !strings.Contains(err.Error(), "TmpDir") {
		t.Errorf("missing TmpDir: error = %v", err)
	}
	assertOnly(t, tmp)
}

func TestCancelledContext(t *testing.T) {
	srv := httptest.NewTLSServer(serveBlob(payload(10, 6), ""))
	defer srv.Close()
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Download(ctx, srv.URL+"/a", nil, Options{TmpDir: tmp, RootCAs: rootsOf(srv)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	assertOnly(t, tmp)
}

func TestQuietProgress(t *testing.T) {
	data := payload(2000, 7)
	srv := httptest.NewTLSServer(serveBlob(data, ""))
	defer srv.Close()
	out, err := os.CreateTemp(t.TempDir(), "progress")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := Download(context.Background(), srv.URL+"/a", nil, Options{TmpDir: t.TempDir(), RootCAs: rootsOf(srv), Progress: out, Label: "a"}); err != nil {
		t.Fatal(err)
	}
	st, err := out.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 0 {
		t.Errorf("%d bytes of progress written to a file that is not a terminal", st.Size())
	}
}

func TestMaxAge(t *testing.T) {
	for _, tc := range []struct {
		cc   []string
		want int
	}{
		{nil, 0},
		{[]string{"max-age=60"}, 60},
		{[]string{"public, MAX-AGE=5"}, 5},
		{[]string{`max-age="7"`}, 7},
		{[]string{"max-age=60, no-cache"}, 0},
		{[]string{"private", "max-age=9"}, 9},
		{[]string{"no-store"}, 0},
		{[]string{"max-age=-3"}, 0},
		{[]string{"max-age=abc"}, 0},
	} {
		h := http.Header{}
		for _, v := range tc.cc {
			h.Add("Cache-Control", v)
		}
		if got := maxAge(h); got != tc.want {
			t.Errorf("maxAge(%q) = %d, want %d", tc.cc, got, tc.want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/1", 0, 1, true},
		{"bytes 5-9/*", 5, -1, true},
		{"bytes 5-9/9", 0, 0, false},
		{"bytes 9-5/20", 0, 0, false},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, tot, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (s != tc.start || tot != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, s, tot, ok, tc.start, tc.total, tc.ok)
		}
	}
}

func TestFresh(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		r    Remote
		want bool
	}{
		{Remote{MaxAge: 60, DownloadTime: now.Add(-59 * time.Second)}, true},
		{Remote{MaxAge: 60, DownloadTime: now.Add(-61 * time.Second)}, false},
		{Remote{MaxAge: 0, DownloadTime: now}, false},
		{Remote{MaxAge: 60}, false},
		{Remote{MaxAge: 60, DownloadTime: now.Add(time.Hour)}, false}, // clock set back
	} {
		if got := fresh(&tc.r, now); got != tc.want {
			t.Errorf("fresh(%+v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}
