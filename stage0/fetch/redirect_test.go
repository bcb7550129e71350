package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestRedirectHTTPSToHTTP(t *testing.T) {
	data := payload(3000, 20)
	plain := httptest.NewServer(serveBlob(data, ""))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/a.aci", http.StatusFound))
	defer secure.Close()
	tmp := t.TempDir()

	_, err := Download(context.Background(), secure.URL+"/a.aci", nil, Options{TmpDir: tmp, RootCAs: rootsOf(secure)})
	if !errors.Is(err, ErrInsecureHTTP) {
		t.Fatalf("error = %v, want a refused redirect (ErrInsecureHTTP)", err)
	}
	if !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), "--insecure-options=http") {
		t.Errorf("error %q does not explain the refused redirect", err)
	}
	assertOnly(t, tmp)

	res, err := Download(context.Background(), secure.URL+"/a.aci", nil, Options{TmpDir: tmp, RootCAs: rootsOf(secure), InsecureHTTP: true})
	if err != nil {
		t.Fatalf("with InsecureHTTP: %v", err)
	}
	assertFile(t, res.Path, data)
	if res.Remote.URL != secure.URL+"/a.aci" {
		t.Errorf("Remote.URL = %q, want the URL asked for", res.Remote.URL)
	}
}

func TestRedirectLimit(t *testing.T) {
	srv := httptest.NewTLSServer(http.RedirectHandler("/again", http.StatusFound))
	defer srv.Close()
	tmp := t.TempDir()
	_, err := Download(context.Background(), srv.URL+"/a", nil, Options{TmpDir: tmp, RootCAs: rootsOf(srv)})
	if err == nil || !strings.Contains(err.Error(), "10 redirects") {
		t.Fatalf("error = %v, want a redirect limit", err)
	}
	assertOnly(t, tmp)
}

func TestCredentialsOnlyToOriginalHost(t *testing.T) {
	data := payload(500, 21)
	var mu sync.Mutex
	seen := map[string]string{}
	record := func(name string, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen[name] = r.Header.Get("Authorization") + "|" + r.Header.Get("X-Token")
	}
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/back" {
			record("back", r)
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		}
		record("other", r)
		serveBlob(data, "")(w, r)
	}))
	defer other.Close()
	var origin *httptest.Server
	origin = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.aci":
			record("origin", r)
			http.Redirect(w, r, other.URL+"/blob", http.StatusFound)
		case "/bounce":
			// Leaves the host, then comes back: still no credentials.
			record("origin-bounce", r)
			http.Redirect(w, r, other.URL+"/back?to="+url.QueryEscape(origin.URL+"/final"), http.StatusFound)
		case "/final":
			record("origin-final", r)
			serveBlob(data, "")(w, r)
		}
	}))
	origin.TLS = other.TLS // reuse the same certificate so one root verifies both
	origin.StartTLS()
	defer origin.Close()

	var asked []string
	opts := Options{
		TmpDir:  t.TempDir(),
		RootCAs: rootsOf(other),
		Header: func(u *url.URL) http.Header {
			asked = append(asked, u.String())
			return http.Header{"Authorization": {"Basic c2VjcmV0"}, "X-Token": {"t0k"}}
		},
	}
	res, err := Download(context.Background(), origin.URL+"/a.aci", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
	if _, err := Download(context.Background(), origin.URL+"/bounce", nil, opts); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"origin":        "Basic c2VjcmV0|t0k",
		"other":         "|",
		"origin-bounce": "Basic c2VjcmV0|t0k",
		"back":          "|",
		"origin-final":  "|",
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s saw credentials %q, want %q", k, seen[k], v)
		}
	}
	if len(asked) != 2 || asked[0] != origin.URL+"/a.aci" {
		t.Errorf("Header was called for %q, want once per download with the original URL", asked)
	}
}
