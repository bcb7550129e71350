package tests

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rkt/rkt/tests/testutils"
)

// TestFetchStoredNameOffline: rkt fetch NAME of an image the store has
// answers from the store, without asking the origin (which may be down);
// --pull-policy=update asks it.
func TestFetchStoredNameOffline(t *testing.T) {
	testutils.RequireRoot(t)
	a := testutils.ACI{Image: testutils.Image{Name: "127.0.0.1/app", Labels: map[string]string{"version": "1.0"}},
		Entries: []testutils.Entry{testutils.File("hello", 0o644, "hi\n")}, Compression: testutils.CompressionGzip}
	image, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sign, pub := discoveryKey(t)
	env, hits := discoveryServer(t, image, sign(image), pub, true)
	c := testutils.NewRktCtx(t)
	r := runWithEnv(t, c, env, "--trust-keys-from-https", "fetch", "127.0.0.1/app:1.0")
	if r.Exit != 0 || !strings.HasPrefix(r.Stdout, "sha512-") {
		t.Fatalf("first fetch: %s", describeResult([]string{"fetch"}, r))
	}
	id := r.Stdout

	before := atomic.LoadInt64(hits)
	r = runWithEnv(t, c, env, "fetch", "127.0.0.1/app:1.0")
	if r.Exit != 0 || r.Stdout != id {
		t.Fatalf("fetch of a stored name: %s; want %q", describeResult([]string{"fetch"}, r), id)
	}
	if n := atomic.LoadInt64(hits) - before; n != 0 {
		t.Errorf("fetch of a name the store has asked the origin %d times; want the store's image without the network", n)
	}
	r = runWithEnv(t, c, env, "fetch", "--pull-policy=update", "127.0.0.1/app:1.0")
	if r.Exit != 0 || r.Stdout != id {
		t.Fatalf("fetch --pull-policy=update: %s", describeResult([]string{"fetch"}, r))
	}
	if atomic.LoadInt64(hits) == before {
		t.Error("fetch --pull-policy=update did not ask the origin")
	}
}
