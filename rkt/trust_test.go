package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/rkt/rkt/gpg"
	"github.com/rkt/rkt/stage0/discovery"
)

// newTestEntity makes an ed25519 signing key. The gpg package proves
// interop with real gpg keys; here any valid key will do.
func newTestEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", strings.ToLower(name)+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armored(t *testing.T, e *openpgp.Entity, private bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	typ := openpgp.PublicKeyType
	if private {
		typ = openpgp.PrivateKeyType
	}
	w, err := armor.Encode(&buf, typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	if private {
		err = e.SerializePrivate(w, nil)
	} else {
		err = e.Serialize(w)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

// trustEnv runs trust commands against temp config dirs.
type trustEnv struct {
	t      *testing.T
	system string
	local  string
}

func newTrustEnv(t *testing.T) *trustEnv {
	t.Helper()
	dir := t.TempDir()
	env := &trustEnv{t: t, system: filepath.Join(dir, "usr-lib-rkt"), local: filepath.Join(dir, "etc-rkt")}
	saved := globalFlags
	globalFlags.SystemConfigDir, globalFlags.LocalConfigDir, globalFlags.UserConfigDir = env.system, env.local, ""
	globalFlags.TrustKeysFromHTTPS = false
	globalFlags.InsecureOptions = insecureOptions{}
	savedTTY := stdinIsTerminal
	t.Cleanup(func() { globalFlags, stdinIsTerminal = saved, savedTTY })
	return env
}

// run executes a fresh `rkt trust` command (flags do not leak between
// runs) with stdin and returns stdout, stderr and the error.
func (e *trustEnv) run(stdin string, args ...string) (string, string, error) {
	e.t.Helper()
	cmd := newTrustCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

func (e *trustEnv) keyPath(prefix string, fpr string) string {
	if prefix == "" {
		return filepath.Join(e.local, "trustedkeys", "root.d", fpr)
	}
	return filepath.Join(e.local, "trustedkeys", "prefix.d", filepath.FromSlash(prefix), fpr)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fprOf(e *openpgp.Entity) string { return hex.EncodeToString(e.PrimaryKey.Fingerprint) }

func TestTrustKeyFile(t *testing.T) {
	ent := newTestEntity(t, "Alice")
	fpr := fprOf(ent)
	keyFile := writeTemp(t, "alice.asc", armored(t, ent, false))

	t.Run("skip review", func(t *testing.T) {
		env := newTrustEnv(t)
		out, _, err := env.run("", "--prefix", "example.com/app", "--skip-fingerprint-review", keyFile)
		if err != nil {
			t.Fatal(err)
		}
		path := env.keyPath("example.com/app", fpr)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("key file: %v", err)
		}
		if want := fmt.Sprintf("Added key for prefix %q at %q", "example.com/app", path); !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	})

	t.Run("refuses without a terminal", func(t *testing.T) {
		env := newTrustEnv(t)
		stdinIsTerminal = func(io.Reader) bool { return false }
		_, _, err := env.run("yes\n", "--prefix", "example.com/app", keyFile)
		if err == nil || !strings.Contains(err.Error(), "not a terminal") || !strings.Contains(err.Error(), "--skip-fingerprint-review") {
			t.Fatalf("err = %v, want a refusal without a terminal", err)
		}
		if _, err := os.Stat(env.keyPath("example.com/app", fpr)); !os.IsNotExist(err) {
			t.Errorf("key stored anyway: %v", err)
		}
	})

	t.Run("prompt yes", func(t *testing.T) {
		env := newTrustEnv(t)
		stdinIsTerminal = func(io.Reader) bool { return true }
		_, stderr, err := env.run("maybe\nyes\n", "--prefix", "example.com/app", keyFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{`Prefix: "example.com/app"`, `Key: "` + keyFile + `"`, gpg.FormatFingerprint(fpr), "Alice <alice@example.com>", "Are you sure you want to trust this key (yes/no)?", `Please answer "yes" or "no"`} {
			if !strings.Contains(stderr, w) {
				t.Errorf("review output lacks %q:\n%s", w, stderr)
			}
		}
		if _, err := os.Stat(env.keyPath("example.com/app", fpr)); err != nil {
			t.Errorf("key not stored: %v", err)
		}
	})

	t.Run("prompt no", func(t *testing.T) {
		env := newTrustEnv(t)
		stdinIsTerminal = func(io.Reader) bool { return true }
		_, _, err := env.run("no\n", "--prefix", "example.com/app", keyFile)
		if err == nil || !strings.Contains(err.Error(), "no key was trusted") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(env.keyPath("example.com/app", fpr)); !os.IsNotExist(err) {
			t.Errorf("key stored after no: %v", err)
		}
		// EOF without an answer is not a yes either.
		if _, _, err := env.run("", "--prefix", "example.com/app", keyFile); err == nil {
			t.Error("EOF taken as yes")
		}
	})

	t.Run("root", func(t *testing.T) {
		env := newTrustEnv(t)
		out, _, err := env.run("", "--root", "--skip-fingerprint-review", "file://"+keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Added root key") {
			t.Errorf("output %q", out)
		}
		if _, err := os.Stat(env.keyPath("", fpr)); err != nil {
			t.Errorf("root key: %v", err)
		}
	})

	t.Run("bad usage", func(t *testing.T) {
		env := newTrustEnv(t)
		for _, args := range [][]string{
			{keyFile},
			{"--root", "--prefix", "example.com", keyFile},
			{"--prefix", "/etc", keyFile},
			{"--prefix", "Example.com", keyFile},
			{"--root"},
		} {
			if _, _, err := env.run("", append(args, "--skip-fingerprint-review")...); err == nil {
				t.Errorf("rkt trust %v succeeded", args)
			}
		}
		if _, err := os.Stat(env.local); !os.IsNotExist(err) {
			t.Errorf("bad usage wrote %s", env.local)
		}
	})

	t.Run("private key refused", func(t *testing.T) {
		env := newTrustEnv(t)
		priv := writeTemp(t, "secret.asc", armored(t, ent, true))
		_, _, err := env.run("", "--prefix", "example.com/app", "--skip-fingerprint-review", priv)
		if err == nil || !strings.Contains(err.Error(), "private key") {
			t.Fatalf("err = %v, want a private key refusal", err)
		}
	})
}

func TestTrustListAndRm(t *testing.T) {
	alice, bob := newTestEntity(t, "Alice"), newTestEntity(t, "Bob")
	env := newTrustEnv(t)
	for prefix, ent := range map[string]*openpgp.Entity{"example.com/app": alice, "": bob} {
		args := []string{"--skip-fingerprint-review", writeTemp(t, "k.asc", armored(t, ent, false))}
		if prefix == "" {
			args = append(args, "--root")
		} else {
			args = append(args, "--prefix", prefix)
		}
		if _, _, err := env.run("", args...); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := env.run("", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "PREFIX") {
		t.Fatalf("list output:\n%s", out)
	}
	if !strings.HasPrefix(lines[1], "*") || !strings.Contains(lines[1], fprOf(bob)) || !strings.Contains(lines[1], "Bob <bob@example.com>") {
		t.Errorf("root key line: %q", lines[1])
	}
	for _, w := range []string{"example.com/app", fprOf(alice), "never", "ok", "local"} {
		if !strings.Contains(lines[2], w) {
			t.Errorf("prefix key line lacks %q: %q", w, lines[2])
		}
	}

	out, _, err = env.run("", "list", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []gpg.Key
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("list --format json: %v\n%s", err, out)
	}
	if len(keys) != 2 || keys[1].Fingerprint != fprOf(alice) || keys[1].Prefix != "example.com/app" || !keys[0].Root {
		t.Errorf("json keys: %+v", keys)
	}

	if _, _, err := env.run("", "rm", fprOf(alice)); err == nil {
		t.Error("rm without --prefix or --root succeeded")
	}
	if _, _, err := env.run("", "rm", fprOf(alice), "--prefix", "example.com"); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("rm for the wrong prefix: %v", err)
	}
	if _, _, err := env.run("", "rm", fprOf(alice), "--prefix", "example.com/app"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.run("", "rm", gpg.FormatFingerprint(fprOf(bob)), "--root"); err != nil {
		t.Fatal(err)
	}
	out, _, err = env.run("", "list", "--no-legend")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("list after rm: %q, %v", out, err)
	}
	if out, _, _ = env.run("", "list", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty json list: %q", out)
	}
}

// TestTrustDiscovery discovers keys from a local plain-http server (the
// test cannot make the process trust a test CA after the fact); the https
// paths are covered by the discovery package's tests.
func TestTrustDiscovery(t *testing.T) {
	ent := newTestEntity(t, "Carol")
	pub := armored(t, ent, false)
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app":
			fmt.Fprintf(w, `<html><head><meta name="ac-discovery-pubkeys" content="127.0.0.1/app %s/pubkeys.gpg"></head></html>`, srvURL)
		case "/pubkeys.gpg":
			w.Write(pub)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	srvURL = srv.URL
	u, _ := url.Parse(srv.URL)
	t.Setenv("RKT_DISCOVERY_PORT", u.Port())

	env := newTrustEnv(t)
	// Plain http needs --insecure-allow-http.
	if _, _, err := env.run("", "--prefix", "127.0.0.1/app", "--skip-fingerprint-review"); err == nil {
		t.Fatal("discovered over http without --insecure-allow-http")
	}
	if _, _, err := env.run("", "--prefix", "127.0.0.1/app", "--skip-fingerprint-review", srv.URL+"/pubkeys.gpg"); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("http key URL: %v, want a refusal", err)
	}
	out, _, err := env.run("", "--prefix", "127.0.0.1/app", "--skip-fingerprint-review", "--insecure-allow-http")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Added key for prefix") {
		t.Errorf("output %q", out)
	}
	if _, err := os.Stat(env.keyPath("127.0.0.1/app", fprOf(ent))); err != nil {
		t.Errorf("discovered key not stored: %v", err)
	}

	// --trust-keys-from-https does not vouch for keys fetched over http
	// unless --insecure-options=pubkey.
	env = newTrustEnv(t)
	stdinIsTerminal = func(io.Reader) bool { return false }
	globalFlags.TrustKeysFromHTTPS = true
	if _, _, err := env.run("", "--prefix", "127.0.0.1/app", "--insecure-allow-http"); err == nil || !strings.Contains(err.Error(), "not a terminal") {
		t.Fatalf("auto-trust over http: %v, want a review refusal", err)
	}
	if err := globalFlags.InsecureOptions.Set("pubkey"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := env.run("", "--prefix", "127.0.0.1/app", "--insecure-allow-http")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "without review (--trust-keys-from-https)") {
		t.Errorf("no warning for the automatic trust:\n%s", stderr)
	}
	if _, err := os.Stat(env.keyPath("127.0.0.1/app", fprOf(ent))); err != nil {
		t.Errorf("auto-trusted key not stored: %v", err)
	}
}

// TestTrustKeysFromHTTPS drives the discovery path the fetch command uses
// when an image has no trusted key: keys found over verified https are
// trusted without review (with a warning) under --trust-keys-from-https,
// but not when TLS checks are off.
func TestTrustKeysFromHTTPS(t *testing.T) {
	ent := newTestEntity(t, "Dave")
	pub := armored(t, ent, false)
	var srvURL string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app":
			fmt.Fprintf(w, `<meta name="ac-discovery-pubkeys" content="127.0.0.1/app %s/keys.asc">`, srvURL)
		case "/keys.asc":
			w.Write(pub)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	srvURL = srv.URL
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.ParseUint(u.Port(), 10, 16)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	for _, tc := range []struct {
		name        string
		insecureTLS bool
		wantErr     string
	}{
		{"verified https", false, ""},
		{"unverified https", true, "not a terminal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTrustEnv(t)
			globalFlags.TrustKeysFromHTTPS = true
			stdinIsTerminal = func(io.Reader) bool { return false }
			var out, errOut bytes.Buffer
			kt := &keyTruster{
				ks:   newKeystore(),
				opts: discovery.Options{Port: uint(port), RootCAs: pool, InsecureTLS: tc.insecureTLS},
				in:   strings.NewReader(""), out: &out, errOut: &errOut,
			}
			n, err := kt.discoverAndTrust(context.Background(), "127.0.0.1/app")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || n != 1 {
				t.Fatalf("trusted %d keys, err %v", n, err)
			}
			if !strings.Contains(errOut.String(), "warning") || !strings.Contains(errOut.String(), "--trust-keys-from-https") {
				t.Errorf("no warning: %q", errOut.String())
			}
			if _, err := os.Stat(env.keyPath("127.0.0.1/app", fprOf(ent))); err != nil {
				t.Errorf("key not stored: %v", err)
			}
		})
	}
}
