package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rangeLog records the Range/If-Range headers of the requests a server saw.
type rangeLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *rangeLog) add(r *http.Request) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Header.Get("Range")+"|"+r.Header.Get("If-Range"))
	return len(l.reqs)
}

func (l *rangeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

func TestResume(t *testing.T) {
	data := payload(512<<10, 10)
	half := len(data) / 2
	var log rangeLog
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"img-1"`)
		if log.add(r) == 1 {
			cutAfter(t, w, data, half)
			return
		}
		cw := &countingWriter{ResponseWriter: w, n: &sent}
		serveBlob(data, `"img-1"`)(cw, r)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/big.aci"
	opts := Options{TmpDir: tmp, InsecureHTTP: true}

	_, err := Download(context.Background(), url, nil, opts)
	if err == nil {
		t.Fatal("no error for a transfer cut halfway")
	}
	if !strings.Contains(err.Error(), "resumed") {
		t.Errorf("error %q does not say the download will be resumed", err)
	}
	key := keyFor(url)
	assertOnly(t, tmp, key+partSuffix, key+metaSuffix)
	st, err := os.Stat(filepath.Join(tmp, key+partSuffix))
	if err != nil || st.Size() != int64(half) {
		t.Fatalf("partial file: %v, %v; want %d bytes", st, err, half)
	}

	res, err := Download(context.Background(), url, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
	if res.Size != int64(len(data)) || res.Remote.ETag != `"img-1"` {
		t.Errorf("result = %+v", res)
	}
	reqs := log.get()
	if want := fmt.Sprintf("bytes=%d-|\"img-1\"", half); len(reqs) != 2 || reqs[1] != want {
		t.Errorf("requests = %q, want the second to be %q", reqs, want)
	}
	if got := sent.Load(); got != int64(len(data)-half) {
		t.Errorf("the resumed transfer sent %d bytes, want %d", got, len(data)-half)
	}
	assertOnly(t, tmp, res.Path)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return w.ResponseWriter.Write(p)
}

func TestResumeServerIgnoresRange(t *testing.T) {
	data := payload(200<<10, 11)
	var log rangeLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		if log.add(r) == 1 {
			cutAfter(t, w, data, 1000)
			return
		}
		w.Write(data) // 200 with the whole file, whatever Range says
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/a.aci"
	opts := Options{TmpDir: tmp, InsecureHTTP: true}
	if _, err := Download(context.Background(), url, nil, opts); err == nil {
		t.Fatal("no error for a cut transfer")
	}
	res, err := Download(context.Background(), url, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := log.get(); len(reqs) != 2 || !strings.HasPrefix(reqs[1], "bytes=1000-") {
		t.Errorf("requests = %q, want a range request second", reqs)
	}
	assertFile(t, res.Path, data)
	assertOnly(t, tmp, res.Path)
}

func TestResumeChangedContent(t *testing.T) {
	// The file changed between the attempts: If-Range fails, 200 with the
	// new version, whose bytes must not be mixed with the old partial.
	v1, v2 := payload(100<<10, 12), payload(100<<10, 13)
	var log rangeLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if log.add(r) == 1 {
			w.Header().Set("ETag", `"v1"`)
			cutAfter(t, w, v1, 5000)
			return
		}
		serveBlob(v2, `"v2"`)(w, r)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/a.aci"
	opts := Options{TmpDir: tmp, InsecureHTTP: true}
	if _, err := Download(context.Background(), url, nil, opts); err == nil {
		t.Fatal("no error for a cut transfer")
	}
	res, err := Download(context.Background(), url, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, v2)
	if res.Remote.ETag != `"v2"` {
		t.Errorf("ETag = %q", res.Remote.ETag)
	}
}

func TestBadPartialResponseRestarts(t *testing.T) {
	data := payload(50<<10, 14)
	var log rangeLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		switch log.add(r) {
		case 1:
			cutAfter(t, w, data, 3000)
		case 2: // a range that is not the one asked for
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 10-%d/%d", len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[10:])
		default:
			serveBlob(data, `"e"`)(w, r)
		}
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/a.aci"
	opts := Options{TmpDir: tmp, InsecureHTTP: true}
	if _, err := Download(context.Background(), url, nil, opts); err == nil {
		t.Fatal("no error for a cut transfer")
	}
	res, err := Download(context.Background(), url, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
	if reqs := log.get(); len(reqs) != 3 || reqs[2] != "|" {
		t.Errorf("requests = %q, want a third one without Range", reqs)
	}
}

func TestCutWithoutETagLeavesNothing(t *testing.T) {
	data := payload(64<<10, 15)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cutAfter(t, w, data, 100)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	_, err := Download(context.Background(), srv.URL+"/a.aci", nil, Options{TmpDir: tmp, InsecureHTTP: true})
	if err == nil {
		t.Fatal("no error for a cut transfer")
	}
	assertOnly(t, tmp) // no ETag: nothing can be resumed, nothing is kept
}

func TestConcurrentDownloads(t *testing.T) {
	data := payload(256<<10, 16)
	var c counter
	srv := httptest.NewServer(c.wrap(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // let the downloads overlap
		serveBlob(data, `"c"`)(w, r)
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/same.aci"
	const n = 8
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := Download(context.Background(), url, nil, Options{TmpDir: tmp, InsecureHTTP: true})
			errs[i] = err
			if err == nil {
				paths[i] = res.Path
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("download %d: %v", i, errs[i])
		}
		if seen[paths[i]] {
			t.Fatalf("two downloads returned the same file %s", paths[i])
		}
		seen[paths[i]] = true
		assertFile(t, paths[i], data)
	}
	assertOnly(t, tmp, paths...)
	if c.n.Load() != n {
		t.Errorf("%d requests, want %d", c.n.Load(), n)
	}
}

func TestShortRangeKeepsPartial(t *testing.T) {
	// A server may answer a range request with less than the rest of the
	// file: the download fails, keeps what it got, and the next one
	// continues from there.
	data := payload(5000, 17)
	var log rangeLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"s"`)
		switch log.add(r) {
		case 1:
			cutAfter(t, w, data, 1000)
		case 2:
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 1000-1999/%d", len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[1000:2000])
		default:
			serveBlob(data, `"s"`)(w, r)
		}
	}))
	defer srv.Close()
	tmp := t.TempDir()
	url := srv.URL + "/a.aci"
	opts := Options{TmpDir: tmp, InsecureHTTP: true}
	for i := range 2 {
		if _, err := Download(context.Background(), url, nil, opts); err == nil {
			t.Fatalf("attempt %d: no error for an incomplete transfer", i+1)
		}
	}
	st, err := os.Stat(filepath.Join(tmp, keyFor(url)+partSuffix))
	if err != nil || st.Size() != 2000 {
		t.Fatalf("partial file after a short range: %v, %v; want 2000 bytes", st, err)
	}
	res, err := Download(context.Background(), url, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
	if reqs := log.get(); len(reqs) != 3 || !strings.HasPrefix(reqs[2], "bytes=2000-") {
		t.Errorf("requests = %q, want the third to continue at 2000", reqs)
	}
}
