package gpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const imageName = "example.com/app"

var imageData = []byte("pretend this is an ACI tarball\x00\x01\x02 with binary bytes\n")

// storeKeyFile writes pub into the local tree without Trust's checks, as
// an administrator copying a key file (later revoked or expired) would.
func storeKeyFile(t *testing.T, ks *Keystore, prefix, fpr string, pub []byte) {
	t.Helper()
	path := filepath.Join(ks.LocalDir, relPath(prefix, prefix == "", fpr))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pub, 0o644); err != nil {
		t.Fatal(err)
	}
}

func check(ks *Keystore, name string, data, sig []byte) (*Key, error) {
	var sr io.Reader
	if sig != nil {
		sr = bytes.NewReader(sig)
	}
	return ks.CheckSignature(context.Background(), name, bytes.NewReader(data), sr)
}

// TestInteropWithGPG checks signatures made by gpg and compares the
// verdict with gpg's own (GOODSIG or not) on a keyring holding only the
// signer's key.
func TestInteropWithGPG(t *testing.T) {
	type tc struct {
		name    string
		key     func(t *testing.T) (fpr string, pub []byte)
		sig     func(t *testing.T) []byte
		data    []byte
		wantErr error
		wantMsg string
	}
	signWith := func(f *keyFixture, armored bool) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return f.get(t).sign(t, imageData, armored) }
	}
	keyOf := func(f *keyFixture) func(t *testing.T) (string, []byte) {
		return func(t *testing.T) (string, []byte) { k := f.get(t); return k.fpr, k.pub }
	}
	cases := []tc{
		{name: "rsa4096 armored", key: keyOf(rsaKey), sig: signWith(rsaKey, true)},
		{name: "rsa4096 binary", key: keyOf(rsaKey), sig: signWith(rsaKey, false)},
		{name: "ed25519 armored", key: keyOf(edKey), sig: signWith(edKey, true)},
		{name: "ed25519 binary", key: keyOf(edKey), sig: signWith(edKey, false)},
		{name: "signing subkey", key: keyOf(subKey), sig: signWith(subKey, true)},
		{name: "expired key", key: keyOf(expiredKey), sig: signWith(expiredKey, true), wantErr: ErrUntrusted, wantMsg: "expired on 2020-01-02"},
		{
			name:    "revoked key",
			key:     func(t *testing.T) (string, []byte) { r := revoked.get(t); return r.key.fpr, r.key.pub },
			sig:     func(t *testing.T) []byte { return revoked.get(t).sig },
			data:    []byte("image signed before the key was revoked\n"),
			wantErr: ErrUntrusted, wantMsg: "revoked",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.data
			if data == nil {
				data = imageData
			}
			fpr, pub := c.key(t)
			sig := c.sig(t)
			ks := newTestKeystore(t)
			storeKeyFile(t, ks, imageName, fpr, pub)
			k, err := check(ks, imageName, data, sig)

			gpgGood, status := gpgVerdict(t, [][]byte{pub}, data, sig)
			if gpgGood != (err == nil) {
				t.Errorf("verdicts differ: gpg good=%v, rkt error=%v\ngpg status:\n%s", gpgGood, err, status)
			}
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckSignature: %v", err)
				}
				if k.Fingerprint != fpr || k.Prefix != imageName {
					t.Errorf("signer %+v, want %s for prefix %s", k, fpr, imageName)
				}
				return
			}
			assertVerifyError(t, err, c.wantErr, c.wantMsg, fpr)
		})
	}
}

// assertVerifyError checks the error class and that the message names the
// image, the prefix, every fingerprint in fprs, the reason, and how to
// trust a key.
func assertVerifyError(t *testing.T, err error, kind error, reason string, fprs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("CheckSignature succeeded, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Errorf("error %T is not a *VerifyError", err)
	}
	msg := err.Error()
	t.Log(msg)
	wants := append([]string{
		fmt.Sprintf("image %q", imageName),
		fmt.Sprintf("prefix %q", imageName),
		reason,
	}, fprs...)
	// A bad signature is not fixed by trusting a key: only the other
	// errors say how to trust one.
	if trustHint := "rkt trust --prefix " + imageName + " "; errors.Is(kind, ErrBadSignature) {
		if strings.Contains(msg, "rkt trust") || !strings.Contains(msg, "fetch it again") {
			t.Errorf("a bad signature should say to fetch again, not to trust a key:\n%s", msg)
		}
	} else {
		wants = append(wants, trustHint)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
}

func TestCheckSignatureBadInput(t *testing.T) {
	ed, other := edKey.get(t), otherKey.get(t)
	goodSig := ed.sign(t, imageData, true)
	goodBin := ed.sign(t, imageData, false)
	otherImage := []byte("another image\n")

	tampered := append([]byte{}, imageData...)
	tampered[3] ^= 0x20

	truncArmored := goodSig[:len(goodSig)/2]
	truncBinary := goodBin[:len(goodBin)-10]

	cases := []struct {
		name   string
		setup  func(ks *Keystore) // trust keys; default: ed for imageName
		image  string
		data   []byte
		sig    []byte
		kind   error
		reason string
		fprs   []string
		not    string // the message must not say this
	}{
		{name: "tampered image", data: tampered, sig: goodSig, kind: ErrBadSignature, reason: "does not match the image", fprs: []string{ed.fpr}},
		{name: "signature of another image", data: imageData, sig: ed.sign(t, otherImage, true), kind: ErrBadSignature, reason: "does not match the image", fprs: []string{ed.fpr}},
		{name: "untrusted key", data: imageData, sig: other.sign(t, imageData, true), kind: ErrUntrusted, reason: "not trusted for this image", fprs: []string{ed.fpr, other.fpr}},
		{
			name: "key trusted for another prefix",
			setup: func(ks *Keystore) {
				trustKey(t, ks, imageName, ed.pub)
				trustKey(t, ks, "other.com/app", other.pub)
			},
			data: imageData, sig: other.sign(t, imageData, true), kind: ErrUntrusted,
			reason: `trusted only for prefix "other.com/app"`, fprs: []string{ed.fpr, other.fpr},
		},
		{
			name:  "key trusted for a string prefix only",
			setup: func(ks *Keystore) { trustKey(t, ks, "example.com/ap", ed.pub); trustKey(t, ks, "", other.pub) },
			data:  imageData, sig: goodSig, kind: ErrUntrusted,
			reason: `trusted only for prefix "example.com/ap"`, fprs: []string{other.fpr, ed.fpr},
		},
		{name: "malformed armor", data: imageData, sig: breakArmor(goodSig), kind: ErrBadSignature, reason: "armor", fprs: []string{ed.fpr}},
		{name: "truncated armored signature", data: imageData, sig: truncArmored, kind: ErrBadSignature, reason: "armor", fprs: []string{ed.fpr}},
		{name: "truncated binary signature", data: imageData, sig: truncBinary, kind: ErrBadSignature, reason: "truncated", fprs: []string{ed.fpr}},
		{name: "missing signature", data: imageData, sig: nil, kind: ErrBadSignature, reason: "no signature", fprs: []string{ed.fpr}},
		{name: "empty signature", data: imageData, sig: []byte{}, kind: ErrBadSignature, reason: "empty", fprs: []string{ed.fpr}},
		{name: "a key instead of a signature", data: imageData, sig: ed.pub, kind: ErrBadSignature, reason: "PGP PUBLIC KEY BLOCK", fprs: []string{ed.fpr}},
		{name: "no trusted keys", setup: func(*Keystore) {}, data: imageData, sig: goodSig, kind: ErrNoTrustedKeys, reason: "no trusted keys: no key in"},
		{
			name: "keys for other prefixes only",
			setup: func(ks *Keystore) {
				trustKey(t, ks, "other.com/app", ed.pub)
				trustKey(t, ks, "example.com/ap", other.pub)
			},
			data: imageData, sig: goodSig, kind: ErrNoTrustedKeys,
			reason: `no key trusted for this image: keys in`, fprs: []string{`"other.com/app"`, `"example.com/ap"`},
			not: "no trusted keys",
		},
		{
			name:  "weak rsa1024 key",
			setup: func(ks *Keystore) { storeKeyFile(t, ks, imageName, weakKey.get(t).fpr, weakKey.get(t).pub) },
			data:  imageData, sig: weakKey.get(t).sign(t, imageData, true), kind: ErrUntrusted,
			reason: "1024 bits", fprs: []string{weakKey.get(t).fpr},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks := newTestKeystore(t)
			if c.setup != nil {
				c.setup(ks)
			} else {
				trustKey(t, ks, imageName, ed.pub)
			}
			_, err := check(ks, imageName, c.data, c.sig)
			assertVerifyError(t, err, c.kind, c.reason, c.fprs...)
			if c.not != "" && err != nil && strings.Contains(err.Error(), c.not) {
				t.Errorf("error says %q:\n%s", c.not, err)
			}
		})
	}
}

func TestCheckSignaturePrefixScopes(t *testing.T) {
	ed := edKey.get(t)
	sig := ed.sign(t, imageData, true)
	for _, tc := range []struct {
		trusted, image string
		ok             bool
	}{
		{"example.com/app", "example.com/app", true},
		{"example.com/app", "example.com/app/sub", true},
		{"example.com", "example.com/app/sub", true},
		{"", "anything.org/x", true}, // root
		{"example.com/app", "example.com/apple", false},
		{"example.com/app/sub", "example.com/app", false},
	} {
		ks := newTestKeystore(t)
		trustKey(t, ks, tc.trusted, ed.pub)
		k, err := check(ks, tc.image, imageData, sig)
		if tc.ok != (err == nil) {
			t.Errorf("key for %q, image %q: err=%v, want ok=%v", tc.trusted, tc.image, err, tc.ok)
			continue
		}
		if err == nil && (k.Prefix != tc.trusted || k.Root != (tc.trusted == "")) {
			t.Errorf("key for %q, image %q: returned scope %q root=%v", tc.trusted, tc.image, k.Prefix, k.Root)
		}
		if err != nil && !errors.Is(err, ErrNoTrustedKeys) {
			t.Errorf("key for %q, image %q: %v, want ErrNoTrustedKeys", tc.trusted, tc.image, err)
		}
	}
}

func TestCheckSignatureVendorMask(t *testing.T) {
	ed := edKey.get(t)
	sig := ed.sign(t, imageData, true)
	ks := newTestKeystore(t)
	installVendorKey(t, ks, "prefix.d/"+imageName+"/"+ed.fpr, ed.pub)
	k, err := check(ks, imageName, imageData, sig)
	if err != nil || !k.Vendor {
		t.Fatalf("vendor key: %+v, %v", k, err)
	}
	if err := ks.Remove(context.Background(), ed.fpr, imageName, false); err != nil {
		t.Fatal(err)
	}
	_, err = check(ks, imageName, imageData, sig)
	assertVerifyError(t, err, ErrNoTrustedKeys, "no key in")
}

// TestSignatureAfterExpiry uses signatures gpg refuses to make: dated
// after the key's expiry. The error must say so, not just that the key
// has expired since.
func TestSignatureAfterExpiry(t *testing.T) {
	exp := expiredKey.get(t)
	entity := exportSecret(t, exp)
	created := entity.PrimaryKey.CreationTime
	ks := newTestKeystore(t)
	storeKeyFile(t, ks, imageName, exp.fpr, exp.pub)

	// The key expires a day after creation.
	sigAfter := craftSignature(t, entity, imageData, created.Add(48*time.Hour))
	ks.now = func() time.Time { return created.Add(72 * time.Hour) }
	_, err := check(ks, imageName, imageData, sigAfter)
	assertVerifyError(t, err, ErrUntrusted, "after the key expired on 2020-01-02", exp.fpr)
	if gpgGood, status := gpgVerdict(t, [][]byte{exp.pub}, imageData, sigAfter); gpgGood {
		t.Errorf("gpg accepts the after-expiry signature:\n%s", status)
	}

	// A signature made while the key was valid is refused once the key
	// has expired, with that reason.
	sigIn := craftSignature(t, entity, imageData, created.Add(6*time.Hour))
	_, err = check(ks, imageName, imageData, sigIn)
	assertVerifyError(t, err, ErrUntrusted, "key cannot be used: expired on 2020-01-02", exp.fpr)

	// A signature dated after the keystore's clock is refused.
	ks.now = func() time.Time { return created.Add(3 * time.Hour) }
	_, err = check(ks, imageName, imageData, sigIn)
	assertVerifyError(t, err, ErrUntrusted, "in the future", exp.fpr)

	// And accepted while the key is still valid, so the refusals above
	// are for the right reason.
	ks.now = func() time.Time { return created.Add(12 * time.Hour) }
	if _, err := check(ks, imageName, imageData, sigIn); err != nil {
		t.Fatalf("signature inside the key's lifetime: %v", err)
	}
}

func TestCheckSignatureCanceled(t *testing.T) {
	ed := edKey.get(t)
	ks := newTestKeystore(t)
	trustKey(t, ks, imageName, ed.pub)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ks.CheckSignature(ctx, imageName, bytes.NewReader(imageData), bytes.NewReader(ed.sign(t, imageData, true)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled CheckSignature: %v, want context.Canceled", err)
	}
}

func TestCheckSignatureInvalidName(t *testing.T) {
	ks := newTestKeystore(t)
	for _, name := range []string{"", "Example.com/App", "../x", "/abs"} {
		if _, err := check(ks, name, imageData, []byte("x")); err == nil || !strings.Contains(err.Error(), "not a valid image name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
}
