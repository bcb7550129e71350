package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	maxRedirects = 10
	userAgent    = "rkt-fetch"
)

// fetcher holds the state of one Download while it talks to the server.
type fetcher struct {
	rawURL string // as given by the caller: the key the store remembers
	u      *url.URL
	prev   *Remote
	opts   Options
	label  string
	cred   http.Header // headers from Options.Header, sent to the original host only
	client *http.Client
}

// credentials returns the headers opts.Header gives for u, or nil.
func credentials(u *url.URL, header func(*url.URL) http.Header) http.Header {
	if header == nil {
		return nil
	}
	uc := *u // the callback cannot change the URL fetched
	h := header(&uc)
	if len(h) == 0 {
		return nil
	}
	return h.Clone()
}

// newClient returns the HTTP client for one Download and a function that
// releases its idle connections. The redirect policy limits redirects,
// refuses https→http unless allowed, and strips credentials once a redirect
// leaves the original host.
func newClient(orig *url.URL, opts Options, cred http.Header) (*http.Client, func()) {
	var c http.Client
	closeIdle := func() {}
	if opts.Client != nil {
		c = *opts.Client
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			RootCAs:            opts.RootCAs,
			InsecureSkipVerify: opts.InsecureTLS, //nolint:gosec // --insecure-options=tls, asked for by the user
		}
		c.Transport = tr
		closeIdle = tr.CloseIdleConnections
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		last := via[len(via)-1].URL
		if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
			return fmt.Errorf("redirect from %s to %s: unsupported URL scheme %q", last.Redacted(), req.URL.Redacted(), req.URL.Scheme)
		}
		if req.URL.Scheme == "http" && !opts.InsecureHTTP {
			return fmt.Errorf("redirect from %s to %s: %w", last.Redacted(), req.URL.Redacted(), ErrInsecureHTTP)
		}
		if leftHost(orig, req, via) {
			for k := range cred {
				req.Header.Del(k)
			}
		}
		return nil
	}
	return &c, closeIdle
}

// leftHost reports whether req or any earlier hop is on a host other than orig's.
func leftHost(orig *url.URL, req *http.Request, via []*http.Request) bool {
	if !strings.EqualFold(req.URL.Host, orig.Host) {
		return true
	}
	for _, r := range via {
		if !strings.EqualFold(r.URL.Host, orig.Host) {
			return true
		}
	}
	return false
}

// run performs the transfer into d, restarting once from zero when the
// server cannot serve the requested range.
func (f *fetcher) run(ctx context.Context, d *dest) (*Result, error) {
	res, err := f.attempt(ctx, d)
	if errors.Is(err, errRestart) {
		d.forgetResume()
		res, err = f.attempt(ctx, d)
	}
	if errors.Is(err, errRestart) {
		return nil, fmt.Errorf("fetching %s: the server sent a partial response (206) to a request for the whole file; cannot download", f.u.Redacted())
	}
	return res, err
}

// errRestart means the resume attempt failed in a way a full download fixes.
var errRestart = errors.New("restart the download from the beginning")

// attempt sends one request and stores the body into d.
func (f *fetcher) attempt(ctx context.Context, d *dest) (*Result, error) {
	offset, partETag := d.resumePoint()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: building the request: %w", f.u.Redacted(), err)
	}
	for k, vs := range f.cred {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	// Ask for the bytes as stored: transparent gzip decoding would break
	// Content-Length checks and byte ranges.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", userAgent)
	if f.prev != nil && f.prev.ETag != "" {
		req.Header.Set("If-None-Match", f.prev.ETag)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		req.Header.Set("If-Range", partETag)
	}

	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.requestError(err)
	}
	defer resp.Body.Close()
	now := time.Now()

	switch resp.StatusCode {
	case http.StatusNotModified:
		if f.prev == nil || f.prev.ETag == "" {
			return nil, f.statusError(resp)
		}
		r := Remote{
			URL:          f.rawURL,
			ETag:         f.prev.ETag,
			MaxAge:       maxAge(resp.Header),
			DownloadTime: now,
			BlobKey:      f.prev.BlobKey,
		}
		if e := resp.Header.Get("ETag"); e != "" {
			r.ETag = e
		}
		return &Result{NotModified: true, Remote: r}, nil
	case http.StatusAccepted:
		return nil, fmt.Errorf("fetching %s: %w", f.u.Redacted(), ErrDeferred)
	case http.StatusOK:
		etag := resp.Header.Get("ETag")
		if err := d.restart(etag); err != nil {
			return nil, fmt.Errorf("fetching %s: %w", f.u.Redacted(), err)
		}
		return f.receive(resp, d, 0, resp.ContentLength, etag, now)
	case http.StatusPartialContent:
		if offset == 0 {
			return nil, errRestart
		}
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			return nil, errRestart
		}
		if total < 0 && resp.ContentLength >= 0 {
			total = offset + resp.ContentLength
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			etag = partETag
		}
		if err := d.append(offset); err != nil {
			return nil, fmt.Errorf("fetching %s: %w", f.u.Redacted(), err)
		}
		return f.receive(resp, d, offset, total, etag, now)
	case http.StatusRequestedRangeNotSatisfiable:
		if offset > 0 {
			return nil, errRestart
		}
	}
	return nil, f.statusError(resp)
}

// receive copies the body into d, which already holds offset bytes, and
// checks that the file ends up total bytes long (total < 0: unknown).
func (f *fetcher) receive(resp *http.Response, d *dest, offset, total int64, etag string, now time.Time) (*Result, error) {
	bar := newProgress(f.opts.Progress, f.label, total, offset)
	n, err := io.Copy(d.f, io.TeeReader(resp.Body, bar))
	size := offset + n
	if err == nil && total >= 0 && size != total {
		err = fmt.Errorf("got %d bytes, expected %d", size, total)
	}
	if err != nil {
		bar.done(false)
		hint := ""
		if d.resumable() {
			hint = "; the partial download is kept and will be resumed by the next fetch"
		}
		return nil, fmt.Errorf("fetching %s: transfer interrupted after %d bytes: %w%s", f.u.Redacted(), size, err, hint)
	}
	bar.done(true)
	return &Result{
		Size: size,
		Remote: Remote{
			URL:          f.rawURL,
			ETag:         etag,
			MaxAge:       maxAge(resp.Header),
			DownloadTime: now,
		},
	}, nil
}

// requestError words a failed request; it drops net/url's
// `Get "URL":` prefix, since our own message names the URL.
func (f *fetcher) requestError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return fmt.Errorf("fetching %s: %w (if you trust this server anyway, use --insecure-options=tls)", f.u.Redacted(), err)
	}
	return fmt.Errorf("fetching %s: %w", f.u.Redacted(), err)
}

func (f *fetcher) statusError(resp *http.Response) error {
	return &HTTPError{URL: f.u.Redacted(), StatusCode: resp.StatusCode, Status: resp.Status}
}

// maxAge returns the Cache-Control max-age in seconds, or 0 when absent or
// when no-cache/no-store forbid reusing the response without revalidation.
func maxAge(h http.Header) int {
	age := 0
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache", "no-store":
				return 0
			case "max-age":
				n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
				if err == nil && n > 0 {
					age = n
				}
			}
		}
	}
	return age
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", then
// total is -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	if tot == "*" {
		return start, -1, true
	}
	total, err := strconv.ParseInt(tot, 10, 64)
	if err != nil || total <= end {
		return 0, 0, false
	}
	return start, total, true
}
