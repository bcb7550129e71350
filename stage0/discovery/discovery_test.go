package discovery

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testServer is an httptest TLS server on 127.0.0.1 serving discovery
// pages by path; it records the requests it gets.
type testServer struct {
	*httptest.Server
	mu       sync.Mutex
	pages    map[string]string // path -> HTML (with %[1]s = server base URL)
	requests []string
	auth     []string // Authorization header of each request
}

func newTestServer(t *testing.T, tlsServer bool, pages map[string]string) *testServer {
	t.Helper()
	ts := &testServer{pages: pages}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.requests = append(ts.requests, r.URL.RequestURI())
		ts.auth = append(ts.auth, r.Header.Get("Authorization"))
		page, ok := ts.pages[r.URL.Path]
		ts.mu.Unlock()
		if strings.HasPrefix(page, "redirect ") {
			http.Redirect(w, r, strings.TrimPrefix(page, "redirect "), http.StatusFound)
			return
		}
		if !ok || r.URL.Query().Get("ac-discovery") != "1" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, page, ts.URL)
	})
	ts.Server = httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS failures
	if tlsServer {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) port(t *testing.T) uint {
	t.Helper()
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint(p)
}

// opts returns options that reach ts and trust its certificate.
func (ts *testServer) opts(t *testing.T) Options {
	t.Helper()
	o := Options{Port: ts.port(t)}
	if ts.Certificate() != nil {
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		o.RootCAs = pool
	}
	return o
}

func (ts *testServer) setPage(path, page string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if page == "" {
		delete(ts.pages, path)
		return
	}
	ts.pages[path] = page
}

func (ts *testServer) authSeen() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.auth...)
}

func (ts *testServer) seen() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.requests...)
}

func metaPage(tags ...string) string {
	return "<!DOCTYPE html><html><head>" + strings.Join(tags, "\n") + "</head><body>hi</body></html>"
}

const imageTag = `<meta name="ac-discovery" content="127.0.0.1/app %[1]s/images/{name}-{version}-{os}-{arch}.{ext}">`

func TestDiscoverImage(t *testing.T) {
	ts := newTestServer(t, true, map[string]string{"/app": metaPage(imageTag)})
	host := HostLabels()
	eps, err := DiscoverImage(context.Background(), "127.0.0.1/app", map[string]string{"version": "1.0"}, ts.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	base := ts.URL + "/images/127.0.0.1/app-1.0-" + host["os"] + "-" + host["arch"]
	want := []Endpoint{{ACI: base + ".aci", ASC: base + ".aci.asc"}}
	if !reflect.DeepEqual(eps, want) {
		t.Errorf("endpoints %+v, want %+v", eps, want)
	}
	if got := ts.seen(); !reflect.DeepEqual(got, []string{"/app?ac-discovery=1"}) {
		t.Errorf("requests %v", got)
	}

	// Default version and labels from a reference string.
	name, labels, err := ParseImageRef("127.0.0.1/app,os=plan9,arch=mips")
	if err != nil {
		t.Fatal(err)
	}
	eps, err = DiscoverImage(context.Background(), name, labels, ts.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := ts.URL + "/images/127.0.0.1/app-latest-plan9-mips.aci"; len(eps) != 1 || eps[0].ACI != want {
		t.Errorf("endpoints %+v, want ACI %s", eps, want)
	}
}

func TestDiscoverWalksUpPrefixes(t *testing.T) {
	ts := newTestServer(t, true, map[string]string{
		"/app/sub": metaPage(`<meta name="description" content="no discovery here">`),
		"/app":     metaPage(imageTag),
	})
	eps, err := DiscoverImage(context.Background(), "127.0.0.1/app/sub/deeper", nil, ts.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || !strings.Contains(eps[0].ACI, "/images/127.0.0.1/app/sub/deeper-latest-") {
		t.Errorf("endpoints %+v", eps)
	}
	want := []string{"/app/sub/deeper?ac-discovery=1", "/app/sub?ac-discovery=1", "/app?ac-discovery=1"}
	if got := ts.seen(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestDiscoverImageFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		image  string
		pages  map[string]string
		labels map[string]string
		want   []string
	}{
		{
			name: "no meta tags", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage()},
			want:  []string{"/app?ac-discovery=1 (no ac-discovery meta tag)", "HTTP 404"},
		},
		{
			name: "meta tag without template", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage(`<meta name="ac-discovery" content="127.0.0.1/app">`)},
			want:  []string{"malformed tag", "got 1 fields"},
		},
		{
			name: "meta tag without content", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage(`<meta name="ac-discovery">`)},
			want:  []string{"no content attribute"},
		},
		{
			name: "broken html", image: "127.0.0.1/app",
			pages: map[string]string{"/app": `<html><head><meta name="ac-discovery" content="127.0.0.1/app https://x/{name}.{ext}`},
			want:  []string{"no ac-discovery meta tag"},
		},
		{
			name: "prefix is a string prefix only", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage(`<meta name="ac-discovery" content="127.0.0.1/ap %[1]s/{name}.{ext}">`)},
			want:  []string{`tag for prefix "127.0.0.1/ap" does not cover "127.0.0.1/app"`},
		},
		{
			name: "template variable without value", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage(`<meta name="ac-discovery" content="127.0.0.1/app %[1]s/{name}-{channel}.{ext}">`)},
			want:  []string{"uses {channel}, which has no value"},
		},
		{
			name: "http template", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage(`<meta name="ac-discovery" content="127.0.0.1/app http://127.0.0.1/{name}.{ext}">`)},
			want:  []string{"plain http", "--insecure-options=http"},
		},
		{
			name: "relative template", image: "127.0.0.1/app",
			pages: map[string]string{"/app": metaPage(`<meta name="ac-discovery" content="127.0.0.1/app /images/{name}.{ext}">`)},
			want:  []string{"not absolute"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, true, tc.pages)
			eps, err := DiscoverImage(context.Background(), tc.image, tc.labels, ts.opts(t))
			if err == nil {
				t.Fatalf("discovered %+v", eps)
			}
			t.Log(err)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("error %v does not wrap ErrNotFound", err)
			}
			for _, w := range append(tc.want, tc.image) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDiscoverTemplateLabels(t *testing.T) {
	ts := newTestServer(t, true, map[string]string{"/app": metaPage(
		`<meta name="ac-discovery" content="127.0.0.1/app %[1]s/{name}-{channel}.{ext}">`,
		`<META NAME="ac-discovery" CONTENT="127.0.0.1 %[1]s/all/{name}-{version}.{ext}"/>`,
	)})
	eps, err := DiscoverImage(context.Background(), "127.0.0.1/app", map[string]string{"channel": "beta/1 x", "version": "2"}, ts.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{ACI: ts.URL + "/127.0.0.1/app-beta%2F1%20x.aci", ASC: ts.URL + "/127.0.0.1/app-beta%2F1%20x.aci.asc"},
		{ACI: ts.URL + "/all/127.0.0.1/app-2.aci", ASC: ts.URL + "/all/127.0.0.1/app-2.aci.asc"},
	}
	if !reflect.DeepEqual(eps, want) {
		t.Errorf("endpoints %+v\nwant %+v", eps, want)
	}
}

func TestDiscoverTLS(t *testing.T) {
	ts := newTestServer(t, true, map[string]string{"/app": metaPage(imageTag)})
	o := Options{Port: ts.port(t)} // system roots: the test CA is unknown
	_, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v, want a certificate error", err)
	}
	o.InsecureTLS = true
	if _, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o); err != nil {
		t.Errorf("with InsecureTLS: %v", err)
	}
}

func TestDiscoverHTTP(t *testing.T) {
	plain := newTestServer(t, false, map[string]string{"/app": metaPage(
		`<meta name="ac-discovery" content="127.0.0.1/app %[1]s/{name}.{ext}">`)})
	o := plain.opts(t)
	_, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o)
	if err == nil {
		t.Fatal("discovered over plain http without InsecureHTTP")
	}
	for _, r := range plain.seen() {
		if r != "/app?ac-discovery=1" && r != "/?ac-discovery=1" {
			t.Errorf("unexpected request %q", r)
		}
	}
	o.InsecureHTTP = true
	eps, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := plain.URL + "/127.0.0.1/app.aci"; eps[0].ACI != want {
		t.Errorf("ACI %s, want %s", eps[0].ACI, want)
	}
}

func TestDiscoverRedirects(t *testing.T) {
	plain := newTestServer(t, false, map[string]string{"/app": metaPage(
		`<meta name="ac-discovery" content="127.0.0.1/app %[1]s/{name}.{ext}">`)})
	secure := newTestServer(t, true, map[string]string{
		"/app":   "redirect " + plain.URL + "/app?ac-discovery=1",
		"/other": "redirect /app?ac-discovery=1",
	})
	secure.setPage("/app2", metaPage(imageTag))
	o := secure.opts(t)

	_, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o)
	if err == nil || !strings.Contains(err.Error(), "refusing redirect") || !strings.Contains(err.Error(), "--insecure-options=http") {
		t.Fatalf("redirect to http: %v, want a refusal", err)
	}
	if n := len(plain.seen()); n != 0 {
		t.Errorf("the http server got %d requests", n)
	}
	o.InsecureHTTP = true
	if _, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o); err != nil {
		t.Errorf("redirect to http with InsecureHTTP: %v", err)
	}
	// https to https redirects are followed.
	secure.setPage("/other", "redirect "+secure.URL+"/app2?ac-discovery=1")
	o.InsecureHTTP = false
	eps, err := DiscoverImage(context.Background(), "127.0.0.1/other", nil, o)
	if err == nil {
		t.Fatalf("tag for 127.0.0.1/app applied to 127.0.0.1/other: %+v", eps)
	}
	if !strings.Contains(err.Error(), `does not cover "127.0.0.1/other"`) {
		t.Errorf("https redirect: %v", err)
	}
}

func TestDiscoverPubKeys(t *testing.T) {
	ts := newTestServer(t, true, map[string]string{
		"/app": metaPage(imageTag),
		"/": metaPage(
			`<meta name="ac-discovery-pubkeys" content="127.0.0.1 %[1]s/pubkeys.gpg">`,
			`<meta name="ac-discovery-pubkeys" content="127.0.0.1/other %[1]s/other.gpg">`,
			`<meta name="ac-discovery-pubkeys" content="127.0.0.1/app http://127.0.0.1/insecure.gpg">`,
		),
	})
	keys, err := DiscoverPubKeys(context.Background(), "127.0.0.1/app", ts.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ts.URL + "/pubkeys.gpg"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	ts.setPage("/", "")
	_, err = DiscoverPubKeys(context.Background(), "127.0.0.1/app", ts.opts(t))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no ac-discovery-pubkeys meta tag") {
		t.Errorf("no pubkeys tag: %v", err)
	}
}

func TestDiscoverSendsCredentialsPerHost(t *testing.T) {
	plain := newTestServer(t, false, map[string]string{"/app": metaPage(
		`<meta name="ac-discovery" content="127.0.0.1/app %[1]s/{name}.{ext}">`)})
	secure := newTestServer(t, true, map[string]string{"/app": metaPage(imageTag)})
	o := secure.opts(t)
	o.Header = func(host string) http.Header {
		if host == "127.0.0.1:"+strconv.Itoa(int(secure.port(t))) {
			return http.Header{"Authorization": {"Bearer secret"}}
		}
		return nil
	}
	if _, err := DiscoverImage(context.Background(), "127.0.0.1/app", nil, o); err != nil {
		t.Fatal(err)
	}
	if got := secure.authSeen(); len(got) != 1 || got[0] != "Bearer secret" {
		t.Errorf("Authorization sent: %q", got)
	}
	// A redirect to another host does not carry the credentials.
	secure.setPage("/app", "redirect "+strings.Replace(plain.URL, "127.0.0.1", "localhost", 1)+"/app?ac-discovery=1")
	o.InsecureHTTP = true
	_, _ = DiscoverImage(context.Background(), "127.0.0.1/app", nil, o)
	for _, a := range plain.authSeen() {
		if a != "" {
			t.Errorf("credentials leaked to another host: %q", a)
		}
	}
	if len(plain.authSeen()) == 0 {
		t.Error("the redirect target got no request")
	}
}

func TestDiscoverCanceled(t *testing.T) {
	ts := newTestServer(t, true, map[string]string{"/app": metaPage(imageTag)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DiscoverImage(ctx, "127.0.0.1/app", nil, ts.opts(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if n := len(ts.seen()); n != 0 {
		t.Errorf("%d requests after cancel", n)
	}
}

func TestDiscoverInvalidName(t *testing.T) {
	for _, n := range []string{"", "Example.com/app", "example.com:443/app", "/app", "a//b"} {
		if _, err := DiscoverImage(context.Background(), n, nil, Options{}); err == nil || !strings.Contains(err.Error(), "appc image name") {
			t.Errorf("name %q: %v", n, err)
		}
	}
}

func TestPortFromEnv(t *testing.T) {
	t.Setenv(EnvPort, "")
	if p, err := PortFromEnv(); p != 0 || err != nil {
		t.Errorf("unset: %d, %v", p, err)
	}
	t.Setenv(EnvPort, "8443")
	if p, err := PortFromEnv(); p != 8443 || err != nil {
		t.Errorf("8443: %d, %v", p, err)
	}
	for _, bad := range []string{"0", "65536", "x", "-1"} {
		t.Setenv(EnvPort, bad)
		if _, err := PortFromEnv(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
