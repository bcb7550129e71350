// Package discovery implements appc meta discovery: it turns an image name
// such as example.com/app into the URLs of the image and its signature
// (meta tag ac-discovery) or of the keys that sign it (meta tag
// ac-discovery-pubkeys), and loads rkt's auth.d credentials for those
// requests.
//
// For a name "example.com/app/sub" it fetches
// https://example.com/app/sub?ac-discovery=1, then walks up the name's
// path components (https://example.com/app?ac-discovery=1,
// https://example.com?ac-discovery=1) until a page has a matching tag:
//
//	<meta name="ac-discovery" content="example.com https://example.com/images/{name}-{version}-{os}-{arch}.{ext}">
//	<meta name="ac-discovery-pubkeys" content="example.com https://example.com/pubkeys.gpg">
//
// A tag applies when its prefix equals the name or is a path-component
// prefix of it. Templates are filled with {name}, {ext} ("aci" or
// "aci.asc") and the labels ({version}, {os}, {arch}, and any other);
// a template using a variable with no value is skipped. Plain http is used
// only with Options.InsecureHTTP, for pages, redirects and discovered URLs
// alike; TLS certificates are verified unless Options.InsecureTLS.
//
// Testing against a local server: serve the discovery page from an
// httptest.NewTLSServer on 127.0.0.1, name the image "127.0.0.1/app",
// and set Options.Port to the server's port and Options.RootCAs to a pool
// holding the server's certificate (srv.Certificate()). The rkt binary
// reads the port from the RKT_DISCOVERY_PORT environment variable (see
// PortFromEnv) and, like every Go program on Linux, takes extra trusted
// CAs from SSL_CERT_FILE / SSL_CERT_DIR.
package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxPage bounds the size of a discovery page.
const maxPage = 1 << 20

// maxRedirects bounds the redirects followed for one request.
const maxRedirects = 10

// EnvPort names the environment variable PortFromEnv reads.
const EnvPort = "RKT_DISCOVERY_PORT"

// ErrNotFound is wrapped by discovery errors when no page gave a usable
// meta tag for the name.
var ErrNotFound = errors.New("nothing discovered")

// Options control how discovery reaches servers.
type Options struct {
	// InsecureHTTP allows plain http: as a fallback for discovery pages,
	// in redirects, and in discovered URLs (--insecure-options=http).
	InsecureHTTP bool
	// InsecureTLS skips TLS certificate verification (--insecure-options=tls).
	InsecureTLS bool
	// Port, if not 0, is the port discovery pages are fetched from
	// instead of the scheme's default. Meant for tests.
	Port uint
	// RootCAs, if not nil, replaces the system CA pool. Meant for tests.
	RootCAs *x509.CertPool
	// Header, if not nil, returns extra headers (credentials) for a host
	// ("host" or "host:port"); see config.LoadAuth.
	Header func(host string) http.Header
}

// Endpoint is a discovered image and its detached signature.
type Endpoint struct {
	ACI string `json:"aci"`
	ASC string `json:"asc"`
}

// PortFromEnv returns the port set in RKT_DISCOVERY_PORT, or 0 if unset.
func PortFromEnv() (uint, error) {
	s := os.Getenv(EnvPort)
	if s == "" {
		return 0, nil
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%s=%q: want a port number from 1 to 65535", EnvPort, s)
	}
	return uint(p), nil
}

// headerTransport adds Options.Header's headers to each request, redirects
// included, so credentials always match the host actually contacted.
type headerTransport struct {
	base   http.RoundTripper
	header func(host string) http.Header
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.header != nil {
		if h := t.header(req.URL.Host); len(h) > 0 {
			req = req.Clone(req.Context())
			for k, vs := range h {
				if req.Header.Get(k) == "" {
					req.Header[k] = vs
				}
			}
		}
	}
	return t.base.RoundTrip(req)
}

// Client returns an HTTP client that applies the options: TLS settings,
// per-host headers, and a redirect policy that refuses to leave https
// unless InsecureHTTP. Fetchers of discovered URLs should use it too.
// Call CloseIdleConnections on it when done.
func (o Options) Client() *http.Client {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs:            o.RootCAs,
			InsecureSkipVerify: o.InsecureTLS, // only on --insecure-options=tls
			MinVersion:         tls.VersionTLS12,
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Transport: &headerTransport{base: tr, header: o.Header},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && o.InsecureHTTP) {
				return fmt.Errorf("refusing redirect from %s to %s: not https (allow http with --insecure-options=http)", via[len(via)-1].URL.Redacted(), req.URL.Redacted())
			}
			return nil
		},
	}
}

// attempt records one discovery page tried and what was wrong with it.
type attempt struct {
	url string
	why string
}

type attempts []attempt

func (a attempts) String() string {
	parts := make([]string, len(a))
	for i, at := range a {
		parts[i] = fmt.Sprintf("%s (%s)", at.url, at.why)
	}
	return strings.Join(parts, "; ")
}

// walk fetches the discovery pages of name, longest prefix first, and
// calls use on each page's meta tags until use reports success. It returns
// the pages tried with the reasons they gave nothing.
func walk(ctx context.Context, name string, opts Options, use func(pageURL string, tags []metaTag) (bool, []string)) (attempts, error) {
	client := opts.Client()
	defer client.CloseIdleConnections()
	var tried attempts
	for _, prefix := range namePrefixes(name) {
		schemes := []string{"https"}
		if opts.InsecureHTTP {
			schemes = append(schemes, "http")
		}
		for _, scheme := range schemes {
			if err := ctx.Err(); err != nil {
				return tried, err
			}
			pageURL := discoveryURL(scheme, prefix, opts.Port)
			page, err := fetchPage(ctx, client, pageURL)
			if err != nil {
				tried = append(tried, attempt{pageURL, err.Error()})
				continue
			}
			ok, why := use(pageURL, parseMeta(page))
			if ok {
				return tried, nil
			}
			tried = append(tried, attempt{pageURL, strings.Join(why, "; ")})
			break // the page was fetched: no http fallback for it
		}
	}
	return tried, nil
}

func discoveryURL(scheme, prefix string, port uint) string {
	host, path, _ := strings.Cut(prefix, "/")
	if port != 0 {
		host = net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
	}
	u := url.URL{Scheme: scheme, Host: host, RawQuery: "ac-discovery=1"}
	if path != "" {
		u.Path = "/" + path
	}
	return u.String()
}

func fetchPage(ctx context.Context, client *http.Client, pageURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is printed by the caller
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return readPage(resp.Body, maxPage)
}

// DiscoverImage finds the image and signature URLs for the appc image
// name. labels may hold "version" (default "latest"), "os" and "arch"
// (default: this host, see HostLabels) and any other label a template
// uses. Endpoints are returned in page order; the error wraps ErrNotFound
// and lists every page tried when nothing usable was found.
func DiscoverImage(ctx context.Context, name string, labels map[string]string, opts Options) ([]Endpoint, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("discovering image: %w", err)
	}
	all := HostLabels()
	all["version"] = "latest"
	for k, v := range labels {
		all[k] = v
	}
	var eps []Endpoint
	tried, err := walk(ctx, name, opts, func(_ string, tags []metaTag) (bool, []string) {
		return useTags(tags, metaImage, name, func(t metaTag) error {
			aci, err := renderTemplate(t.value, name, "aci", all)
			if err == nil {
				err = checkURL(aci, opts.InsecureHTTP)
			}
			var asc string
			if err == nil {
				asc, err = renderTemplate(t.value, name, "aci.asc", all)
			}
			if err == nil {
				err = checkURL(asc, opts.InsecureHTTP)
			}
			if err == nil {
				eps = append(eps, Endpoint{ACI: aci, ASC: asc})
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("discovering image %s: %w", name, err)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("discovering image %s: %w: tried %s; check the name, or fetch the image by URL or file", name, ErrNotFound, tried)
	}
	return eps, nil
}

// useTags passes use each well-formed meta tag of kind whose prefix covers
// name, and reports, for walk, whether use took any (returned nil) and
// why the others were not taken.
func useTags(tags []metaTag, kind, name string, use func(metaTag) error) (bool, []string) {
	var why []string
	used := false
	for _, t := range tags {
		if t.name != kind {
			continue
		}
		if t.bad != "" {
			why = append(why, "malformed tag "+t.bad)
			continue
		}
		if !coversName(t.prefix, name) {
			why = append(why, fmt.Sprintf("tag for prefix %q does not cover %q", t.prefix, name))
			continue
		}
		if err := use(t); err != nil {
			why = append(why, err.Error())
			continue
		}
		used = true
	}
	if used {
		return true, nil
	}
	if len(why) == 0 {
		why = append(why, "no "+kind+" meta tag")
	}
	return false, why
}

// DiscoverPubKeys finds the URLs of the public keys that sign images named
// name (meta tag ac-discovery-pubkeys). The error wraps ErrNotFound and
// lists every page tried when none was found.
func DiscoverPubKeys(ctx context.Context, name string, opts Options) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("discovering public keys: %w", err)
	}
	var keys []string
	tried, err := walk(ctx, name, opts, func(_ string, tags []metaTag) (bool, []string) {
		return useTags(tags, metaPubKeys, name, func(t metaTag) error {
			err := checkURL(t.value, opts.InsecureHTTP)
			if err == nil {
				keys = append(keys, t.value)
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("discovering public keys for %s: %w", name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("discovering public keys for %s: %w: tried %s; give the key file or URL to rkt trust instead", name, ErrNotFound, tried)
	}
	return keys, nil
}
