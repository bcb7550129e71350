package gpg

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePublicKeyFromGPG(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture *keyFixture
		algo    string
	}{
		{"rsa4096", rsaKey, "rsa4096"},
		{"ed25519", edKey, "ed25519"},
		{"signing subkey", subKey, "ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.fixture.get(t)
			for _, form := range []struct {
				name string
				data []byte
			}{
				{"armored", k.pub},
				{"binary", gpg(t, nil, "--export", k.fpr)},
			} {
				got, err := ParsePublicKey(form.data)
				if err != nil {
					t.Fatalf("%s: %v", form.name, err)
				}
				if got.Fingerprint != k.fpr {
					t.Errorf("%s: fingerprint %s, gpg says %s", form.name, got.Fingerprint, k.fpr)
				}
				if got.Algorithm != tc.algo {
					t.Errorf("%s: algorithm %q, want %q", form.name, got.Algorithm, tc.algo)
				}
				if len(got.UserIDs) != 1 || got.UserIDs[0] != k.uid {
					t.Errorf("%s: user IDs %q, want [%q]", form.name, got.UserIDs, k.uid)
				}
				if got.Expires != nil {
					t.Errorf("%s: expires %v, want never", form.name, got.Expires)
				}
				if got.Created.IsZero() {
					t.Errorf("%s: zero creation time", form.name)
				}
			}
		})
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	ed := edKey.get(t)
	secretArmored := gpg(t, nil, "--armor", "--export-secret-keys", ed.fpr)
	secretBinary := gpg(t, nil, "--export-secret-keys", ed.fpr)
	// A public key followed by a secret subkey packet smuggled in binary.
	mixed := append(gpg(t, nil, "--export", ed.fpr), secretBinary...)

	for _, tc := range []struct {
		name string
		data func(t *testing.T) []byte
		want []string
	}{
		{"armored private key", func(*testing.T) []byte { return secretArmored }, []string{"private key"}},
		{"binary private key", func(*testing.T) []byte { return secretBinary }, []string{"private key"}},
		{"public then private", func(*testing.T) []byte { return mixed }, []string{"private key"}},
		{"cannot sign", func(t *testing.T) []byte { return certOnlyKey.get(t).pub }, []string{"cannot sign", certOnlyKey.get(t).fpr}},
		{"expired", func(t *testing.T) []byte { return expiredKey.get(t).pub }, []string{"expired on 2020-01-02", expiredKey.get(t).fpr}},
		{"revoked", func(t *testing.T) []byte { return revoked.get(t).key.pub }, []string{"revoked", revoked.get(t).key.fpr}},
		{"rsa1024", func(t *testing.T) []byte { return weakKey.get(t).pub }, []string{"1024 bits", "2048 to 4096"}},
		{"two keys", func(t *testing.T) []byte { return append(append([]byte{}, ed.pub...), rsaKey.get(t).pub...) }, []string{"holds 2 keys"}},
		{"empty", func(*testing.T) []byte { return nil }, []string{"empty"}},
		{"text", func(*testing.T) []byte { return []byte("hello, I am not a key\n") }, []string{"not OpenPGP data"}},
		{"broken armor", func(*testing.T) []byte { return breakArmor(ed.pub) }, []string{"armor"}},
		{"signature block", func(*testing.T) []byte { return ed.sign(t, []byte("x"), true) }, []string{"PGP SIGNATURE"}},
		{"truncated binary", func(*testing.T) []byte {
			b := gpg(t, nil, "--export", ed.fpr)
			return b[:len(b)/2]
		}, []string{"malformed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePublicKey(tc.data(t))
			if err == nil {
				t.Fatalf("accepted key %+v", k)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// breakArmor corrupts the base64 body of an armored block.
func breakArmor(a []byte) []byte {
	lines := bytes.Split(a, []byte("\n"))
	for i, l := range lines {
		if len(l) > 20 && !bytes.HasPrefix(l, []byte("-----")) {
			lines[i] = append([]byte("!!!!"), l[4:]...)
			break
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

func TestSplitKeys(t *testing.T) {
	ed, rsa := edKey.get(t), rsaKey.get(t)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"armored ring", gpg(t, nil, "--armor", "--export", ed.fpr, rsa.fpr)},
		{"binary ring", gpg(t, nil, "--export", ed.fpr, rsa.fpr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := SplitKeys(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range parts {
				k, err := ParsePublicKey(p)
				if err != nil {
					t.Fatalf("part: %v", err)
				}
				got = append(got, k.Fingerprint)
			}
			want := map[string]bool{ed.fpr: true, rsa.fpr: true}
			if len(got) != 2 || !want[got[0]] || !want[got[1]] || got[0] == got[1] {
				t.Errorf("split fingerprints %v, want %s and %s", got, ed.fpr, rsa.fpr)
			}
		})
	}
	if _, err := SplitKeys(gpg(t, nil, "--armor", "--export-secret-keys", ed.fpr)); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("SplitKeys of a secret key: %v, want a private key refusal", err)
	}
}

func TestFingerprintFormats(t *testing.T) {
	const fpr = "b019726ec1cefb32acfa0540d66418564496d941"
	if got, want := FormatFingerprint(fpr), "B019 726E C1CE FB32 ACFA  0540 D664 1856 4496 D941"; got != want {
		t.Errorf("FormatFingerprint = %q, want %q", got, want)
	}
	for _, in := range []string{fpr, strings.ToUpper(fpr), "0x" + fpr, FormatFingerprint(fpr)} {
		got, err := NormalizeFingerprint(in)
		if err != nil || got != fpr {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want %q", in, got, err, fpr)
		}
	}
	for _, in := range []string{"", "abc", fpr[:39], fpr + "0", strings.Replace(fpr, "b", "g", 1), "../../etc/passwd"} {
		if got, err := NormalizeFingerprint(in); err == nil {
			t.Errorf("NormalizeFingerprint(%q) = %q, want an error", in, got)
		}
	}
}
