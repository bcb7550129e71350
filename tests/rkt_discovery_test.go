package tests

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rkt/rkt/tests/testutils"
)

// discoveryKey makes a signing key with the real gpg in a private home and
// returns a function that signs data (armored, detached) and the armored
// public key.
func discoveryKey(t *testing.T) (sign func([]byte) []byte, pub []byte) {
	t.Helper()
	home, err := os.MkdirTemp("", "rktdg") // short: gpg-agent socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		kill.Run()
		os.RemoveAll(home)
	})
	gpg := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	gpg(nil, "--quick-gen-key", "Discovery Test <disc@rkt.test>", "ed25519", "sign", "1d")
	pub = gpg(nil, "--armor", "--export", "disc@rkt.test")
	return func(data []byte) []byte { return gpg(data, "--armor", "--detach-sign") }, pub
}

// discoveryServer serves appc discovery for 127.0.0.1/app over TLS on
// 127.0.0.1: the meta tags, the image, its signature and the key. It
// returns the environment that points rkt at it.
func discoveryServer(t *testing.T, image, sig, pub []byte, withTags bool) (env []string, hits *int64) {
	t.Helper()
	hits = new(int64)
	var ts *httptest.Server
	ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt64(hits, 1)
		base := ts.URL
		switch {
		case r.URL.Path == "/app" && r.URL.Query().Get("ac-discovery") == "1":
			fmt.Fprintln(w, "<html><head>")
			if withTags {
				fmt.Fprintf(w, `<meta name="ac-discovery" content="127.0.0.1/app %s/images/{name}-{version}-{os}-{arch}.{ext}">`+"\n", base)
				fmt.Fprintf(w, `<meta name="ac-discovery-pubkeys" content="127.0.0.1/app %s/pubkeys.gpg">`+"\n", base)
			}
			fmt.Fprintln(w, "</head></html>")
		case strings.HasSuffix(r.URL.Path, ".aci"):
			w.Write(image)
		case strings.HasSuffix(r.URL.Path, ".aci.asc"):
			w.Write(sig)
		case r.URL.Path == "/pubkeys.gpg":
			w.Write(pub)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ts.URL)
	return []string{"SSL_CERT_FILE=" + ca, "RKT_DISCOVERY_PORT=" + u.Port()}, hits
}

// TestDiscoveryFetchAndRun finds an image by name through appc discovery
// over TLS (a test CA), trusts its publisher's key from ac-discovery-pubkeys
// with --trust-keys-from-https, and runs it with verification on.
func TestDiscoveryFetchAndRun(t *testing.T) {
	testutils.RequireRoot(t)
	entries, err := testutils.BusyboxEntries()
	if err != nil {
		t.Fatal(err)
	}
	a := testutils.ACI{Image: testutils.Image{Name: "127.0.0.1/app", Labels: map[string]string{"version": "1.0"},
		Exec: []string{"/bin/sh", "-c", "echo discovered and verified"}}, Entries: entries, Compression: testutils.CompressionGzip}
	image, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sign, pub := discoveryKey(t)
	env, _ := discoveryServer(t, image, sign(image), pub, true)
	c := testutils.NewRktCtx(t)
	t.Cleanup(func() { c.Run("gc", "--grace-period=0s") })
	c.MustRun("image", "gc") // creates the (empty) store

	// No key trusted, no terminal to ask on: refused, nothing stored.
	before := captureStore(t, c)
	r := runWithEnv(t, c, env, "fetch", "127.0.0.1/app:1.0")
	if r.Exit != 254 || !strings.Contains(r.Stderr, "127.0.0.1/app") || !strings.Contains(r.Stderr, "rkt trust --prefix") {
		t.Fatalf("fetch without a trusted key: %s", describeResult([]string{"fetch"}, r))
	}
	assertStoreUnchanged(t, c, before)

	// --trust-keys-from-https trusts the discovered key (with a warning).
	r = runWithEnv(t, c, env, "--trust-keys-from-https", "fetch", "127.0.0.1/app:1.0")
	if r.Exit != 0 || !strings.HasPrefix(r.Stdout, "sha512-") {
		t.Fatalf("fetch with --trust-keys-from-https: %s", describeResult([]string{"fetch"}, r))
	}
	if !strings.Contains(r.Stderr, "warning") {
		t.Errorf("trusting a key without review should warn: %q", r.Stderr)
	}
	if out := c.MustRun("trust", "list"); !strings.Contains(out, "127.0.0.1/app") {
		t.Errorf("trust list does not show the discovered key:\n%s", out)
	}

	// Run by name, verification on (the image is in the store, verified).
	r = runWithEnv(t, c, env, "run", "--net=none", "127.0.0.1/app:1.0")
	if r.Exit != 0 || !strings.Contains(r.Stdout, "discovered and verified") {
		t.Fatalf("run: %s", describeResult([]string{"run"}, r))
	}
}

// TestDiscoveryBrokenPage gives a clear error when the name's page has no
// ac-discovery tags, and stores nothing.
func TestDiscoveryBrokenPage(t *testing.T) {
	testutils.RequireRoot(t)
	env, hits := discoveryServer(t, nil, nil, nil, false)
	c := testutils.NewRktCtx(t)
	c.MustRun("image", "gc") // creates the (empty) store
	before := captureStore(t, c)
	r := runWithEnv(t, c, env, "--trust-keys-from-https", "fetch", "127.0.0.1/app:1.0")
	if r.Exit != 254 || !strings.Contains(r.Stderr, "ac-discovery") {
		t.Fatalf("fetch of a name without discovery tags: %s", describeResult([]string{"fetch"}, r))
	}
	if atomic.LoadInt64(hits) == 0 {
		t.Error("rkt did not ask the test server")
	}
	assertStoreUnchanged(t, c, before)
}
