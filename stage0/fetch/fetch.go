// Package fetch downloads remote files (images and their .asc signatures)
// over HTTP(S) into a temporary directory, with rkt's remote-cache semantics:
// Cache-Control max-age, ETag revalidation with If-None-Match, and resumable
// partial downloads with Range/If-Range.
//
// The package knows nothing about images or the image store: it turns a URL
// into a complete file in Options.TmpDir, and reports what the caller should
// remember about the URL (a Remote) for the next fetch. file:// URLs are not
// handled here; the caller reads local files itself.
//
// Partial downloads live in TmpDir as dl-<key>.part with a dl-<key>.meta
// sidecar (JSON: URL and ETag), where <key> is the first 32 hex digits of the
// SHA-256 of the URL. The process that holds an flock on the .part file owns
// it; a concurrent process downloading the same URL uses its own unique
// temporary file and does not resume. A finished download is renamed to a
// unique dl-<key>-<random>.download file whose path is returned to the caller.
package fetch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"time"
)

// ErrDeferred is returned (wrapped) when the server answers 202 Accepted:
// the content is not ready yet and the caller should retry later. Signature
// servers use it for signatures that are generated lazily.
var ErrDeferred = errors.New("the server accepted the request but the content is not ready yet (202 Accepted); retry later")

// ErrInsecureHTTP is returned (wrapped) when a plain http:// URL, or a
// redirect from https:// to http://, is refused because Options.InsecureHTTP
// is not set.
var ErrInsecureHTTP = errors.New("plain HTTP is not allowed; use --insecure-options=http to allow it")

// Remote is what the store remembers about a URL between fetches.
type Remote struct {
	URL          string
	ETag         string
	MaxAge       int // seconds from Cache-Control: max-age (0 = none)
	DownloadTime time.Time
	BlobKey      string // opaque to this package: set by the caller
}

// Options configure one Download.
type Options struct {
	// TmpDir holds partial and finished downloads. It must be on the same
	// filesystem as the store so the caller can rename the result. Required.
	TmpDir string
	// InsecureHTTP allows http:// URLs and redirects from https to http.
	InsecureHTTP bool
	// InsecureTLS accepts any server certificate.
	InsecureTLS bool
	// RootCAs, when set, is the pool of roots server certificates are
	// verified against instead of the system roots. To trust extra roots in
	// addition to the system ones, start from x509.SystemCertPool and add to it.
	// Ignored when Client is set.
	RootCAs *x509.CertPool
	// Header returns extra request headers (credentials) for the URL being
	// fetched. They are sent to the original host only, never to a host a
	// redirect leads to. May be nil.
	Header func(u *url.URL) http.Header
	// Progress receives a progress bar when it is a terminal (*os.File for
	// which term.IsTerminal is true). Otherwise nothing is written. nil = quiet.
	Progress io.Writer
	// Label is shown in the progress bar; the last element of the URL path
	// is used when empty.
	Label string
	// Client replaces the HTTP client built from the options above (TLS
	// settings are then the client's own). The redirect policy of this
	// package is still applied, on a copy: the given client is not modified.
	Client *http.Client
}

// Result describes the outcome of a Download.
type Result struct {
	// Path is the downloaded file in TmpDir; the caller takes ownership
	// (renames or removes it). Empty when NotModified.
	Path string
	// NotModified is true when the cached copy is still fresh (max-age) or
	// the server answered 304 to If-None-Match.
	NotModified bool
	// Remote is the updated cache data to store for the URL.
	Remote Remote
	// Size is the size of the file at Path.
	Size int64
}

// HTTPError is the error Download returns when the server answers with a status that
// is neither a success nor a redirect.
type HTTPError struct {
	URL        string // the URL that was requested, with any password redacted
	StatusCode int
	Status     string // e.g. "404 Not Found"
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("fetching %s: %s", e.URL, e.Status)
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		msg += " (check the credentials configured for this host in auth.d)"
	}
	return msg
}

// Download fetches rawURL (https://, or http:// with Options.InsecureHTTP)
// into a new file in opts.TmpDir.
//
// prev is the cache data saved from the previous fetch of the same URL, or
// nil. When prev's max-age has not expired, Download returns NotModified
// without any network traffic. Otherwise it revalidates with prev.ETag and
// returns NotModified on 304. A previously interrupted transfer of the same
// URL is resumed when the server still serves the same ETag.
//
// On failure nothing is left in TmpDir except a resumable .part/.meta pair.
func Download(ctx context.Context, rawURL string, prev *Remote, opts Options) (*Result, error) {
	u, err := checkURL(rawURL, opts.InsecureHTTP)
	if err != nil {
		return nil, err
	}
	if opts.TmpDir == "" {
		return nil, fmt.Errorf("fetching %s: no temporary directory given (Options.TmpDir is required)", u.Redacted())
	}
	now := time.Now()
	if prev != nil && fresh(prev, now) {
		return &Result{NotModified: true, Remote: *prev}, nil
	}

	d, err := openDest(opts.TmpDir, rawURL)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u.Redacted(), err)
	}
	committed := false
	defer func() {
		if !committed {
			d.fail()
		}
	}()

	label := opts.Label
	if label == "" {
		label = path.Base(u.Path)
	}
	f := &fetcher{rawURL: rawURL, u: u, prev: prev, opts: opts, label: label}
	f.cred = credentials(u, opts.Header)
	client, closeIdle := newClient(u, opts, f.cred)
	defer closeIdle()
	f.client = client

	res, err := f.run(ctx, d)
	if err != nil {
		return nil, err
	}
	if res.NotModified {
		d.discard()
		committed = true
		return res, nil
	}
	p, err := d.commit()
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u.Redacted(), err)
	}
	committed = true
	res.Path = p
	return res, nil
}

// fresh reports whether prev's max-age has not expired at now. A download
// time in the future (the clock was set back) counts as expired.
func fresh(prev *Remote, now time.Time) bool {
	if prev.MaxAge <= 0 || prev.DownloadTime.IsZero() || prev.DownloadTime.After(now) {
		return false
	}
	return prev.DownloadTime.Add(time.Duration(prev.MaxAge) * time.Second).After(now)
}

// checkURL parses rawURL and refuses schemes this package does not download.
func checkURL(rawURL string, insecureHTTP bool) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("fetching %q: invalid URL: %w", rawURL, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecureHTTP {
			return nil, fmt.Errorf("fetching %s: %w", u.Redacted(), ErrInsecureHTTP)
		}
	case "file":
		return nil, fmt.Errorf("fetching %s: file:// URLs are read from disk by the caller, not downloaded", u.Redacted())
	default:
		return nil, fmt.Errorf("fetching %s: unsupported URL scheme %q: only https:// (and http:// with --insecure-options=http) can be downloaded", u.Redacted(), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("fetching %s: the URL has no host", u.Redacted())
	}
	return u, nil
}
