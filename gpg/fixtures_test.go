package gpg

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The fixtures are real GnuPG keys made once per test binary, in a private
// GNUPGHOME, and shared by all tests: generating RSA keys takes seconds.

// gpgHome is the test binary's GNUPGHOME, made by TestMain. Its path is
// kept short because gpg-agent's socket path is limited to ~100 bytes.
var gpgHome string

// gpgMu serializes gpg invocations on gpgHome.
var gpgMu sync.Mutex

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rktgpg")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating GNUPGHOME:", err)
		os.Exit(1)
	}
	gpgHome = dir
	code := m.Run()
	// Stop the gpg-agent that gpg started for this home (found through
	// the home's socket, so only ours).
	if _, err := exec.LookPath("gpgconf"); err == nil {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+gpgHome)
		_ = cmd.Run()
	}
	os.RemoveAll(gpgHome)
	os.Exit(code)
}

// runGPG runs gpg in home with stdin and returns stdout.
func runGPG(t testing.TB, home string, stdin []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg is required for these tests (apt-get install gnupg): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}
	cmd := exec.CommandContext(ctx, "gpg", append(base, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // in case gpg-agent kept our pipes
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func gpg(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	gpgMu.Lock()
	defer gpgMu.Unlock()
	return runGPG(t, gpgHome, stdin, args...)
}

// fingerprintOf returns the primary fingerprint of the key with uid.
func fingerprintOf(t testing.TB, uid string) string {
	t.Helper()
	out := gpg(t, nil, "--with-colons", "--fingerprint", "="+uid)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		if f[0] == "fpr" && len(f) > 9 {
			return strings.ToLower(f[9])
		}
	}
	t.Fatalf("no fingerprint for %q in:\n%s", uid, out)
	return ""
}

// testKey is a gpg-made key.
type testKey struct {
	uid     string
	fpr     string // primary, lowercase
	pub     []byte // armored public key as exported by gpg
	sigTime string // --faked-system-time for signing, "" for now
}

// sign makes a detached signature over data with key (or its signing
// subkey, as gpg chooses).
func (k *testKey) sign(t testing.TB, data []byte, armored bool) []byte {
	t.Helper()
	args := []string{"--local-user", k.fpr, "--detach-sign", "--digest-algo", "SHA256", "--output", "-"}
	if armored {
		args = append(args, "--armor")
	}
	if k.sigTime != "" {
		args = append([]string{"--faked-system-time", k.sigTime}, args...)
	}
	return gpg(t, data, args...)
}

type keyFixture struct {
	once sync.Once
	key  *testKey
	make func(t testing.TB) *testKey
}

func (f *keyFixture) get(t testing.TB) *testKey {
	t.Helper()
	f.once.Do(func() { f.key = f.make(t) })
	if f.key == nil {
		t.Fatal("key fixture failed in an earlier test")
	}
	return f.key
}

func genKey(t testing.TB, uid, algo, usage, expire string, extra ...string) *testKey {
	t.Helper()
	gpg(t, nil, append(extra, "--quick-gen-key", uid, algo, usage, expire)...)
	fpr := fingerprintOf(t, uid)
	return &testKey{uid: uid, fpr: fpr, pub: gpg(t, nil, "--armor", "--export", fpr)}
}

var (
	rsaKey = &keyFixture{make: func(t testing.TB) *testKey {
		return genKey(t, "RSA Signer <rsa@example.com>", "rsa4096", "sign", "never")
	}}
	edKey = &keyFixture{make: func(t testing.TB) *testKey {
		return genKey(t, "Ed Signer <ed@example.com>", "ed25519", "sign", "never")
	}}
	otherKey = &keyFixture{make: func(t testing.TB) *testKey {
		return genKey(t, "Other Signer <other@example.com>", "ed25519", "sign", "never")
	}}
	// subKey has a certify-only primary and an ed25519 signing subkey.
	subKey = &keyFixture{make: func(t testing.TB) *testKey {
		k := genKey(t, "Subkey Signer <sub@example.com>", "ed25519", "cert", "never")
		gpg(t, nil, "--quick-add-key", k.fpr, "ed25519", "sign", "never")
		k.pub = gpg(t, nil, "--armor", "--export", k.fpr)
		return k
	}}
	// certOnlyKey cannot sign at all.
	certOnlyKey = &keyFixture{make: func(t testing.TB) *testKey {
		return genKey(t, "Cert Only <cert@example.com>", "ed25519", "cert", "never")
	}}
	// expiredKey was valid for one day in January 2020; sigTime is inside
	// that day.
	expiredKey = &keyFixture{make: func(t testing.TB) *testKey {
		k := genKey(t, "Expired Signer <expired@example.com>", "ed25519", "sign", "1d", "--faked-system-time", "20200101T000000")
		k.sigTime = "20200101T120000"
		return k
	}}
	// weakKey is RSA 1024.
	weakKey = &keyFixture{make: func(t testing.TB) *testKey {
		return genKey(t, "Weak Signer <weak@example.com>", "rsa1024", "sign", "never")
	}}
	revoked = &revokedFixture{}
)

// revokedFixture is a key that signed revokedData and was then revoked by
// importing the revocation certificate gpg made at key generation.
type revokedFixture struct {
	once    sync.Once
	key     *testKey
	sig     []byte
	data    []byte
	prePub  []byte // public key before revocation
	revCert []byte
}

func (f *revokedFixture) get(t testing.TB) *revokedFixture {
	t.Helper()
	f.once.Do(func() {
		k := genKey(t, "Revoked Signer <revoked@example.com>", "ed25519", "sign", "never")
		f.data = []byte("image signed before the key was revoked\n")
		f.sig = k.sign(t, f.data, true)
		f.prePub = k.pub
		cert, err := os.ReadFile(filepath.Join(gpgHome, "openpgp-revocs.d", strings.ToUpper(k.fpr)+".rev"))
		if err != nil {
			t.Fatalf("reading gpg's revocation certificate: %v", err)
		}
		// gpg prefixes the armor line with ':' to prevent accidental import.
		f.revCert = bytes.Replace(cert, []byte(":-----BEGIN"), []byte("-----BEGIN"), 1)
		gpg(t, f.revCert, "--import")
		k.pub = gpg(t, nil, "--armor", "--export", k.fpr)
		f.key = k
	})
	if f.key == nil {
		t.Fatal("revoked key fixture failed in an earlier test")
	}
	return f
}

// exportSecret returns key's secret key as go-crypto entity, to craft
// signatures gpg refuses to make.
func exportSecret(t testing.TB, k *testKey) *openpgp.Entity {
	t.Helper()
	sec := gpg(t, nil, "--armor", "--export-secret-keys", k.fpr)
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(sec))
	if err != nil || len(el) != 1 {
		t.Fatalf("reading exported secret key: %v (%d entities)", err, len(el))
	}
	return el[0]
}

// craftSignature signs data with e's primary key with the given creation
// time, bypassing any validity check, and returns the armored signature.
func craftSignature(t testing.TB, e *openpgp.Entity, data []byte, created time.Time) []byte {
	t.Helper()
	priv := e.PrivateKey
	sig := &packet.Signature{
		Version:      4,
		SigType:      packet.SigTypeBinary,
		PubKeyAlgo:   priv.PubKeyAlgo,
		Hash:         crypto.SHA256,
		CreationTime: created,
		IssuerKeyId:  &priv.KeyId,
	}
	h, err := sig.PrepareSign(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(data)
	if err := sig.Sign(h, priv, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, "PGP SIGNATURE", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sig.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

// gpgVerdict asks gpg whether sig over data is good with a keyring holding
// only pubs: true for GOODSIG, false for BADSIG, EXPKEYSIG, REVKEYSIG,
// EXPSIG, ERRSIG or a failed parse. The status lines are returned too.
func gpgVerdict(t testing.TB, pubs [][]byte, data, sig []byte) (bool, string) {
	t.Helper()
	home, err := os.MkdirTemp("", "rktgpgv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	for _, p := range pubs {
		runGPG(t, home, p, "--no-autostart", "--import")
	}
	dataPath, sigPath := filepath.Join(home, "image.aci"), filepath.Join(home, "image.aci.asc")
	if err := os.WriteFile(dataPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sigPath, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gpg", "--homedir", home, "--batch", "--no-tty", "--no-autostart", "--status-fd", "1", "--verify", sigPath, dataPath)
	out, _ := cmd.Output() // a non-zero exit is a verdict, not a failure
	status := string(out)
	good := strings.Contains(status, "[GNUPG:] GOODSIG ") && strings.Contains(status, "[GNUPG:] VALIDSIG ")
	return good, status
}

// newTestKeystore returns a keystore in fresh temp dirs.
func newTestKeystore(t *testing.T) *Keystore {
	t.Helper()
	dir := t.TempDir()
	return NewKeystore(filepath.Join(dir, "usr-lib-rkt"), filepath.Join(dir, "etc-rkt"))
}

// trustKey stores k for prefix (root if prefix is "") in ks.LocalDir,
// failing the test on error.
func trustKey(t *testing.T, ks *Keystore, prefix string, pub []byte) *Key {
	t.Helper()
	k, err := ks.Trust(context.Background(), prefix, prefix == "", pub)
	if err != nil {
		t.Fatalf("Trust(%q): %v", prefix, err)
	}
	return k
}
