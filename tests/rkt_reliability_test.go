package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

// runParallel runs each argument list as its own rkt process, all at once,
// and returns the results in order.
func runParallel(c *testutils.RktCtx, argLists [][]string) []testutils.Result {
	res := make([]testutils.Result, len(argLists))
	var wg sync.WaitGroup
	for i, args := range argLists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = c.Run(args...)
		}()
	}
	wg.Wait()
	return res
}

// storeConsistent checks that every listed image is complete and that the
// store holds exactly one blob and one tree per image and nothing in tmp/.
func storeConsistent(t *testing.T, c *testutils.RktCtx, wantImages int) {
	t.Helper()
	_, imgs := listImages(t, c)
	if len(imgs) != wantImages {
		t.Errorf("%d images listed, want %d", len(imgs), wantImages)
	}
	args := []string{"image", "verify"}
	for _, i := range imgs {
		args = append(args, i.ID)
	}
	if len(imgs) > 0 {
		if r := c.Run(args...); r.Exit != 0 {
			t.Errorf("%s", describeResult(args, r))
		}
	}
	var blobs, trees []string
	filepath.WalkDir(filepath.Join(c.Dir, "cas", "blob"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs = append(blobs, d.Name())
		}
		return nil
	})
	ents, _ := os.ReadDir(filepath.Join(c.Dir, "cas", "tree"))
	for _, e := range ents {
		trees = append(trees, e.Name())
	}
	if len(blobs) != len(imgs) || len(trees) != len(imgs) {
		t.Errorf("%d blobs and %d trees for %d images:\nblobs %v\ntrees %v", len(blobs), len(trees), len(imgs), blobs, trees)
	}
	if tmp, _ := os.ReadDir(filepath.Join(c.Dir, "cas", "tmp")); len(tmp) != 0 {
		var names []string
		for _, e := range tmp {
			names = append(names, e.Name())
		}
		t.Errorf("cas/tmp holds %v", names)
	}
}

// TestConcurrentFetches: eight rkt fetch processes at a time, of the same
// image, of different images, and of the same URL, while other processes
// keep reading the image list: all succeed and the store ends consistent.
func TestConcurrentFetches(t *testing.T) {
	c := newImageCtx(t)
	dir := t.TempDir()
	mk := func(i int) testutils.ACI {
		return testutils.ACI{Image: testutils.Image{Name: "example.com/conc", Labels: map[string]string{"version": fmt.Sprint(i)}},
			Entries:     []testutils.Entry{testutils.File("data", 0o644, string(pseudoRandom(1<<20, uint64(i+10))))},
			Compression: testutils.CompressionGzip}
	}
	same := mk(0)
	samePath := writeACI(t, dir, "same.aci", same)

	// Readers run throughout: every list they see must parse and contain
	// only complete images.
	stop := make(chan struct{})
	var readerErrs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := c.Run("image", "list", "--format=json")
				var imgs []listedImage
				if r.Exit != 0 || json.Unmarshal([]byte(r.Stdout), &imgs) != nil {
					mu.Lock()
					readerErrs = append(readerErrs, describeResult([]string{"image", "list"}, r))
					mu.Unlock()
					continue
				}
				for _, i := range imgs {
					if _, err := os.Stat(filepath.Join(c.Dir, "cas", "tree", i.ID, "rendered")); err != nil {
						mu.Lock()
						readerErrs = append(readerErrs, fmt.Sprintf("listed image %s has no complete tree: %v", i.ID, err))
						mu.Unlock()
					}
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		for _, e := range readerErrs {
			t.Errorf("concurrent reader: %s", e)
		}
	}()

	check := func(phase string, res []testutils.Result, want []string) {
		t.Helper()
		for i, r := range res {
			if r.Exit != 0 || strings.TrimSpace(r.Stdout) != want[i] {
				t.Errorf("%s, process %d: want %s; %s", phase, i, want[i], describeResult(nil, r))
			}
		}
	}
	var args [][]string
	var want []string
	for range 8 {
		args = append(args, []string{"fetch", insecureImage, "--full", samePath})
		want = append(want, imageID(t, same))
	}
	check("same image", runParallel(c, args), want)
	storeConsistent(t, c, 1)

	args, want = nil, nil
	for i := 1; i <= 8; i++ {
		a := mk(i)
		args = append(args, []string{"fetch", insecureImage, "--full", writeACI(t, dir, fmt.Sprint(i, ".aci"), a)})
		want = append(want, imageID(t, a))
	}
	check("different images", runParallel(c, args), want)
	storeConsistent(t, c, 9)

	srv := newImageServer(t, false)
	web := mk(100)
	data, _ := web.Bytes()
	url := srv.put("/web.aci", data, `"w1"`, "")
	args, want = nil, nil
	for range 8 {
		args = append(args, []string{"fetch", "--insecure-options=http,image", "--full", url})
		want = append(want, imageID(t, web))
	}
	check("same URL", runParallel(c, args), want)
	storeConsistent(t, c, 10)

	before := captureStore(t, c)
	if out := c.MustRun("image", "gc"); strings.TrimSpace(out) != "" {
		t.Errorf("image gc after concurrent fetches removed something:\n%s", out)
	}
	assertStoreUnchanged(t, c, before)
}

// startKill starts `rkt args...`, kills it with SIGKILL after delay, and
// reports whether it was still running then.
func startKill(t *testing.T, c *testutils.RktCtx, delay time.Duration, args ...string) (killed bool, r testutils.Result) {
	t.Helper()
	cmd := c.Cmd(context.Background(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(delay):
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) // only the rkt we started
		<-done
		killed = cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled()
	}
	return killed, testutils.Result{Stdout: stdout.String(), Stderr: stderr.String(), Exit: cmd.ProcessState.ExitCode()}
}

// TestKillDuringFetch kills `rkt fetch` of a ~50 MB image with SIGKILL at
// fixed delays after its start. After each kill the next command works and
// the image is either not listed or listed complete; at the end a real
// fetch works and image gc leaves exactly what the index references.
func TestKillDuringFetch(t *testing.T) {
	c := newImageCtx(t)
	var es []testutils.Entry
	for i := range 12 {
		es = append(es, testutils.File(fmt.Sprintf("data/%02d", i), 0o644, string(pseudoRandom(4<<20, uint64(i+1000)))))
	}
	big := testutils.ACI{Image: testutils.Image{Name: "example.com/big"}, Entries: es}
	p := writeACI(t, t.TempDir(), "big.aci", big)
	id := imageID(t, big)
	small := writeACI(t, t.TempDir(), "small.aci", smallACI("example.com/small", "1", "small"))

	var killedAt, finishedAt []time.Duration
	for delay := time.Duration(0); delay <= 320*time.Millisecond; delay += 20 * time.Millisecond {
		killed, r := startKill(t, c, delay, "fetch", insecureImage, "--full", p)
		if killed {
			killedAt = append(killedAt, delay)
		} else {
			finishedAt = append(finishedAt, delay)
			if r.Exit != 0 {
				t.Errorf("fetch not killed but failed: %s", describeResult(nil, r))
			}
		}
		_, imgs := listImages(t, c) // the next command works
		switch {
		case len(imgs) == 0:
		case len(imgs) == 1 && imgs[0].ID == id:
			c.MustRun("image", "verify", id) // listed means complete
			c.MustRun("image", "rm", id)
		default:
			t.Fatalf("after a kill at %v: image list %+v", delay, imgs)
		}
	}
	t.Logf("killed during fetch at %v; fetch had finished at %v", killedAt, finishedAt)
	if len(killedAt) < 4 {
		t.Errorf("only %d kills landed during a fetch: the test does not cover what it should", len(killedAt))
	}

	// The store works: fetch, verify, export.
	if got := fetchOK(t, c, "--full", p, small); len(got) != 2 || got[0] != id {
		t.Fatalf("fetch after the kills printed %v", got)
	}
	c.MustRun("image", "verify", id)
	exported := filepath.Join(t.TempDir(), "out.aci")
	c.MustRun("image", "export", id, exported)
	orig, _ := os.ReadFile(p)
	if got, _ := os.ReadFile(exported); !bytes.Equal(got, orig) {
		t.Error("the image fetched after the kills differs from its file")
	}
	// gc removes every leftover of the killed processes.
	left, _ := os.ReadDir(filepath.Join(c.Dir, "cas", "tmp"))
	t.Logf("%d work areas left in cas/tmp by killed fetches before gc", len(left))
	c.MustRun("image", "gc")
	storeConsistent(t, c, 2)
	c.MustRun("image", "gc", "--grace-period=0s")
	storeConsistent(t, c, 0)
}

// TestKillDuringDownloadResumes kills a fetch while the server is sending
// the image: nothing is listed, and the next fetch resumes the transfer.
func TestKillDuringDownloadResumes(t *testing.T) {
	c := newImageCtx(t)
	big := testutils.ACI{Image: testutils.Image{Name: "example.com/dl"},
		Entries: []testutils.Entry{testutils.File("data", 0o644, string(pseudoRandom(16<<20, 7)))}}
	data, _ := big.Bytes()
	var requests atomic.Int32
	var mu sync.Mutex
	var ranges []string
	sent := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		w.Header().Set("ETag", `"dl-1"`)
		if n == 1 { // send 4 MiB, then stall until the client is gone
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:4<<20])
			w.(http.Flusher).Flush()
			sent <- struct{}{}
			<-r.Context().Done()
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	url := srv.URL + "/dl.aci"
	args := []string{"fetch", "--insecure-options=http,image", "--full", url}

	cmd := c.Cmd(context.Background(), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		t.Fatal("the server never sent the first bytes")
	}
	// Wait until the bytes reached the partial download file.
	deadline := time.Now().Add(10 * time.Second)
	for {
		parts, _ := filepath.Glob(filepath.Join(c.Dir, "cas", "tmp", "*.part"))
		if len(parts) == 1 {
			if fi, err := os.Stat(parts[0]); err == nil && fi.Size() >= 1<<20 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no partial download in cas/tmp (have %v)", parts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()

	if _, imgs := listImages(t, c); len(imgs) != 0 {
		t.Fatalf("a killed download is listed: %+v", imgs)
	}
	r := c.Run(args...)
	if r.Exit != 0 || strings.TrimSpace(r.Stdout) != imageID(t, big) {
		t.Fatalf("fetch after the kill: %s", describeResult(args, r))
	}
	mu.Lock()
	got := append([]string(nil), ranges...)
	mu.Unlock()
	sort.Strings(got) // "" < "bytes=..."
	if len(got) != 2 || !strings.HasPrefix(got[1], "bytes=") || got[1] == "bytes=0-" {
		t.Errorf("Range headers %q: the second fetch did not resume", got)
	}
	c.MustRun("image", "gc")
	storeConsistent(t, c, 1)
}

// TestListWhileFirstFetchCreatesIndex: `rkt image list` run while the very
// first fetch creates the store's index must list nothing or the image,
// never fail.
func TestListWhileFirstFetchCreatesIndex(t *testing.T) {
	p := writeACI(t, t.TempDir(), "a.aci", smallACI("example.com/first", "1", "first"))
	for round := range 8 {
		c := newImageCtx(t)
		done := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					if r := c.Run("image", "list", "--format=json"); r.Exit != 0 {
						mu.Lock()
						failures = append(failures, describeResult([]string{"image", "list"}, r))
						mu.Unlock()
					}
				}
			}()
		}
		r := c.Run("fetch", insecureImage, p)
		close(done)
		wg.Wait()
		if r.Exit != 0 {
			t.Errorf("round %d: %s", round, describeResult(nil, r))
		}
		for _, f := range failures {
			t.Errorf("round %d, concurrent reader: %s", round, f)
		}
	}
}
