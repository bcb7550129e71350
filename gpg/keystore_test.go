package gpg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTrustWritesKeyFile(t *testing.T) {
	ed := edKey.get(t)
	for _, tc := range []struct {
		prefix string
		root   bool
		rel    string
	}{
		{"example.com/app", false, "prefix.d/example.com/app/" + ed.fpr},
		{"", true, "root.d/" + ed.fpr},
	} {
		ks := newTestKeystore(t)
		k, err := ks.Trust(context.Background(), tc.prefix, tc.root, ed.pub)
		if err != nil {
			t.Fatalf("Trust(%q, root=%v): %v", tc.prefix, tc.root, err)
		}
		want := filepath.Join(ks.LocalDir, filepath.FromSlash(tc.rel))
		if k.Path != want || k.Prefix != tc.prefix || k.Root != tc.root || k.Fingerprint != ed.fpr {
			t.Errorf("Trust returned %+v, want path %s", k, want)
		}
		info, err := os.Stat(want)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o644 {
			t.Errorf("key file mode %v, want 0644", info.Mode().Perm())
		}
		dinfo, err := os.Stat(filepath.Dir(want))
		if err != nil || dinfo.Mode().Perm() != 0o755 {
			t.Errorf("key dir mode %v (%v), want 0755", dinfo.Mode().Perm(), err)
		}
		data, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
			t.Errorf("key file is not an armored public key:\n%s", data)
		}
		if again, err := ParsePublicKey(data); err != nil || again.Fingerprint != ed.fpr {
			t.Errorf("stored key parses to %+v, %v", again, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(want))
		if len(entries) != 1 {
			t.Errorf("key dir holds %d entries, want only the key (no temp files)", len(entries))
		}
		// Trusting the same key again replaces it.
		if _, err := ks.Trust(context.Background(), tc.prefix, tc.root, ed.pub); err != nil {
			t.Errorf("trusting again: %v", err)
		}
	}
}

func TestTrustRefuses(t *testing.T) {
	ed := edKey.get(t)
	for _, tc := range []struct {
		name   string
		prefix string
		root   bool
		data   []byte
		want   string
	}{
		{"no prefix", "", false, ed.pub, "empty prefix"},
		{"root and prefix", "example.com", true, ed.pub, "both --root and --prefix"},
		{"absolute", "/etc", false, ed.pub, "must not start"},
		{"dotdot", "example.com/../../x", false, ed.pub, `".."`},
		{"dot", "example.com/./x", false, ed.pub, `"."`},
		{"uppercase", "Example.com", false, ed.pub, "not a valid image name"},
		{"double slash", "example.com//x", false, ed.pub, "not a valid image name"},
		{"trailing slash", "example.com/", false, ed.pub, "not a valid image name"},
		{"private key", "example.com", false, gpg(t, nil, "--armor", "--export-secret-keys", ed.fpr), "private key"},
		{"expired", "example.com", false, expiredKey.get(t).pub, "expired"},
		{"revoked", "example.com", false, revoked.get(t).key.pub, "revoked"},
		{"cannot sign", "example.com", false, certOnlyKey.get(t).pub, "cannot sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := newTestKeystore(t)
			if _, err := ks.Trust(context.Background(), tc.prefix, tc.root, tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Trust: %v, want an error mentioning %s", err, tc.want)
			}
			if _, err := os.Stat(ks.LocalDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused Trust created %s (%v)", ks.LocalDir, err)
			}
		})
	}
}

// installVendorKey writes pub into the system tree as a vendor would.
func installVendorKey(t *testing.T, ks *Keystore, rel string, pub []byte) string {
	t.Helper()
	path := filepath.Join(ks.SystemDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type listed struct {
	Fpr    string
	Prefix string
	Root   bool
	Vendor bool
}

func listKeys(t *testing.T, ks *Keystore) ([]listed, []Key) {
	t.Helper()
	keys, err := ks.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []listed
	for _, k := range keys {
		out = append(out, listed{k.Fingerprint, k.Prefix, k.Root, k.Vendor})
	}
	return out, keys
}

func TestListRemoveAndMask(t *testing.T) {
	ctx := context.Background()
	ed, rsa := edKey.get(t), rsaKey.get(t)
	ks := newTestKeystore(t)
	installVendorKey(t, ks, "prefix.d/example.com/"+rsa.fpr, rsa.pub)
	installVendorKey(t, ks, "root.d/"+ed.fpr, ed.pub)
	trustKey(t, ks, "example.com/app", ed.pub)

	got, keys := listKeys(t, ks)
	want := []listed{
		{ed.fpr, "", true, true},
		{rsa.fpr, "example.com", false, true},
		{ed.fpr, "example.com/app", false, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	if keys[1].Algorithm != "rsa4096" || len(keys[1].UserIDs) != 1 || keys[1].UserIDs[0] != rsa.uid || keys[1].Problem != "" {
		t.Errorf("listed key details: %+v", keys[1])
	}

	// Removing a vendor key masks it with an empty local file.
	if err := ks.Remove(ctx, FormatFingerprint(rsa.fpr), "example.com", false); err != nil {
		t.Fatal(err)
	}
	mask := filepath.Join(ks.LocalDir, "prefix.d", "example.com", rsa.fpr)
	if info, err := os.Stat(mask); err != nil || info.Size() != 0 {
		t.Fatalf("mask file %s: %v", mask, err)
	}
	if _, err := os.Stat(filepath.Join(ks.SystemDir, "prefix.d", "example.com", rsa.fpr)); err != nil {
		t.Errorf("vendor file was touched: %v", err)
	}
	got, _ = listKeys(t, ks)
	if len(got) != 2 || got[1].Fpr != ed.fpr || got[0].Root != true {
		t.Errorf("after masking, List = %+v", got)
	}
	if err := ks.Remove(ctx, rsa.fpr, "example.com", false); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("removing a masked key again: %v, want ErrKeyNotFound", err)
	}

	// Removing a local key deletes its file and the emptied prefix dirs.
	if err := ks.Remove(ctx, ed.fpr, "example.com/app", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ks.LocalDir, "prefix.d", "example.com", "app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty prefix dir left behind: %v", err)
	}
	if _, err := os.Stat(mask); err != nil {
		t.Errorf("the mask was removed with the other key: %v", err)
	}

	// Not trusted for that scope.
	if err := ks.Remove(ctx, ed.fpr, "example.com/app", false); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("second Remove: %v, want ErrKeyNotFound", err)
	}
	if err := ks.Remove(ctx, ed.fpr, "other.com", false); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "other.com") {
		t.Errorf("Remove for another prefix: %v, want ErrKeyNotFound naming the prefix", err)
	}
	if err := ks.Remove(ctx, "../../../etc/passwd", "", true); err == nil {
		t.Error("Remove accepted a path as fingerprint")
	}
	// The vendor root key is masked too.
	if err := ks.Remove(ctx, ed.fpr, "", true); err != nil {
		t.Fatal(err)
	}
	if got, _ = listKeys(t, ks); len(got) != 0 {
		t.Errorf("after removing everything, List = %+v", got)
	}
}

func TestListReportsProblems(t *testing.T) {
	ed := edKey.get(t)
	ks := newTestKeystore(t)
	dir := filepath.Join(ks.LocalDir, "prefix.d", "example.com")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 40)
	files := map[string][]byte{
		wrong:                   ed.pub, // misnamed
		expiredKey.get(t).fpr:   expiredKey.get(t).pub,
		revoked.get(t).key.fpr:  revoked.get(t).key.pub,
		strings.Repeat("1", 40): []byte("garbage"),
		".tmp-ignored":          []byte("partial write"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, keys := listKeys(t, ks)
	problems := map[string]string{}
	for _, k := range keys {
		problems[k.Fingerprint] = k.Problem
	}
	want := map[string]string{
		ed.fpr:                  "does not match",
		expiredKey.get(t).fpr:   "expired on 2020-01-02",
		revoked.get(t).key.fpr:  "revoked",
		strings.Repeat("1", 40): "unreadable",
	}
	if len(problems) != len(want) {
		t.Errorf("List gave %d keys (%v), want %d", len(problems), problems, len(want))
	}
	for fpr, w := range want {
		if !strings.Contains(problems[fpr], w) {
			t.Errorf("key %s: problem %q, want it to mention %q", fpr, problems[fpr], w)
		}
	}
}

func TestKeysForMatchesPathComponents(t *testing.T) {
	ed, rsa, other := edKey.get(t), rsaKey.get(t), otherKey.get(t)
	ks := newTestKeystore(t)
	trustKey(t, ks, "example.com/app", ed.pub)
	trustKey(t, ks, "example.com", rsa.pub)
	trustKey(t, ks, "", other.pub)
	for name, want := range map[string][]string{
		"example.com/app":     {ed.fpr, rsa.fpr, other.fpr},
		"example.com/app/sub": {ed.fpr, rsa.fpr, other.fpr},
		"example.com/apple":   {rsa.fpr, other.fpr},
		"example.com":         {rsa.fpr, other.fpr},
		"example.co":          {other.fpr},
		"example.com.evil":    {other.fpr},
	} {
		keys, err := ks.keysFor(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, k := range keys {
			got[k.Fingerprint] = true
		}
		if len(got) != len(want) {
			t.Errorf("keys for %s: %v, want %v", name, got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("keys for %s lack %s", name, w)
			}
		}
	}
}
