package stage0_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/stage0"
	"github.com/rkt/rkt/tests/testutils"
)

// goodSig is what fakeVerifier takes for a valid signature.
const goodSig = "signed by the test key\n"

// fakeVerifier accepts exactly goodSig, as signed by "test-fingerprint".
type fakeVerifier struct{ calls int }

func (v *fakeVerifier) Verify(_ context.Context, name string, image io.ReadSeeker, sig io.Reader) (string, error) {
	v.calls++
	b, err := io.ReadAll(sig)
	if err != nil {
		return "", err
	}
	if string(b) != goodSig {
		return "", errors.New("bad signature of " + name)
	}
	return "test-fingerprint", nil
}

// writeACI writes an image file (and its signature when signed) into dir.
func writeACI(t *testing.T, dir, file string, img testutils.Image, signed bool) string {
	t.Helper()
	p := filepath.Join(dir, file)
	a := testutils.ACI{Image: img, Entries: []testutils.Entry{testutils.File("rootfs/etc/"+file, 0o644, img.Name)}}
	if err := a.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	if signed {
		if err := os.WriteFile(p+".asc", []byte(goodSig), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// keyOf describes a returned row for messages.
func keyOf(i *imagestore.ImageInfo) string {
	if i == nil {
		return "no image"
	}
	return fmt.Sprintf("image %s (signed by %q)", i.Key, i.SignedBy)
}

func openStore(t *testing.T) *imagestore.Store {
	t.Helper()
	s, err := imagestore.Open(filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listImages returns the store's rows by key.
func listImages(t *testing.T, s *imagestore.Store) map[string]*imagestore.ImageInfo {
	t.Helper()
	l, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*imagestore.ImageInfo{}
	for _, i := range l {
		m[i.Key] = i
	}
	return m
}

// TestUnverifiedImageRefusedLater: an image fetched once with
// --insecure-options=image stays unverified in the store; named later by
// ID, by name or by its file without that option, it is refused (no row
// handed back to run), and the refusal does not mark it verified. With the
// option the same references resolve, so the refusal is for the missing
// signature check, not for a lookup failure.
func TestUnverifiedImageRefusedLater(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	p := writeACI(t, t.TempDir(), "app.aci", testutils.Image{Name: "example.com/app", Exec: []string{"/bin/true"}}, false)
	insecure := &stage0.Fetcher{Store: s, SkipVerify: true, Warn: func(string) {}}
	info, err := insecure.Fetch(ctx, p)
	if err != nil {
		t.Fatalf("fetch with --insecure-options=image: %v", err)
	}
	if info.SignedBy != "" {
		t.Fatalf("unsigned image stored as signed by %q", info.SignedBy)
	}
	for _, ref := range []string{info.Key, imagestore.ShortKey(info.Key), "example.com/app", p} {
		for _, policy := range []stage0.PullPolicy{stage0.PullNever, stage0.PullNew} {
			v := &fakeVerifier{}
			strict := &stage0.Fetcher{Store: s, PullPolicy: policy, Verifier: v}
			got, err := strict.Fetch(ctx, ref)
			if err == nil || got != nil {
				t.Errorf("Fetch(%s, pull policy %v) without --insecure-options=image: got %s, %v; want the unverified image refused", ref, policy, keyOf(got), err)
			} else if !strings.Contains(err.Error(), "without a signature check") {
				t.Errorf("Fetch(%s): %v, want it to say the image was stored without a signature check", ref, err)
			}
			if v.calls != 0 {
				t.Errorf("Fetch(%s): an unsigned image's signature was checked %d times", ref, v.calls)
			}
			var warned []string
			lax := &stage0.Fetcher{Store: s, PullPolicy: policy, SkipVerify: true, Warn: func(m string) { warned = append(warned, m) }}
			if got, err := lax.Fetch(ctx, ref); err != nil || got.Key != info.Key {
				t.Errorf("Fetch(%s, pull policy %v) with --insecure-options=image: %s, %v; want %s", ref, policy, keyOf(got), err, info.Key)
			} else if len(warned) == 0 {
				t.Errorf("Fetch(%s) of an unverified image with --insecure-options=image gave no warning", ref)
			}
		}
	}
	rows := listImages(t, s)
	if len(rows) != 1 || rows[info.Key] == nil || rows[info.Key].SignedBy != "" {
		t.Errorf("store after the refusals: %v, want only %s, still unverified", rows, info.Key)
	}
}

// TestUnverifiedDependencyRefused: a signed image whose dependency is in
// the store unverified is refused, and nothing of it is stored; once the
// dependency is fetched again with its signature, the same fetch works.
func TestUnverifiedDependencyRefused(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	dir := t.TempDir()
	depPath := writeACI(t, dir, "dep.aci", testutils.Image{Name: "example.com/dep"}, true)
	appPath := writeACI(t, dir, "app.aci", testutils.Image{Name: "example.com/app", Exec: []string{"/bin/true"},
		Dependencies: []testutils.Dependency{{ImageName: "example.com/dep"}}}, true)
	insecure := &stage0.Fetcher{Store: s, SkipVerify: true, Warn: func(string) {}}
	dep, err := insecure.Fetch(ctx, depPath)
	if err != nil {
		t.Fatal(err)
	}
	if dep.SignedBy != "" {
		t.Fatalf("dependency fetched with --insecure-options=image stored as signed by %q", dep.SignedBy)
	}
	v := &fakeVerifier{}
	strict := &stage0.Fetcher{Store: s, Verifier: v}
	got, err := strict.Fetch(ctx, appPath)
	if err == nil || got != nil {
		t.Fatalf("signed image with an unverified dependency: got %s, %v; want it refused", keyOf(got), err)
	}
	if !strings.Contains(err.Error(), "example.com/dep") {
		t.Errorf("error %q does not name the unverified dependency", err)
	}
	if v.calls == 0 {
		t.Error("the signed image's own signature was never checked: the refusal is not the dependency's")
	}
	if rows := listImages(t, s); len(rows) != 1 || rows[dep.Key] == nil {
		t.Errorf("store after the refusal holds %d images, want only the dependency", len(rows))
	}
	// The dependency verified now: the same fetch succeeds.
	update := &stage0.Fetcher{Store: s, PullPolicy: stage0.PullUpdate, Verifier: v}
	if d, err := update.Fetch(ctx, depPath); err != nil || d.SignedBy != "test-fingerprint" {
		t.Fatalf("fetch the dependency again with its signature: %s, %v", keyOf(d), err)
	}
	if got, err := strict.Fetch(ctx, appPath); err != nil || got.SignedBy != "test-fingerprint" {
		t.Errorf("fetch once the dependency is verified: %s, %v", keyOf(got), err)
	}
}

// TestBadSignatureStoresNothing: an image whose signature does not verify
// is refused and leaves the store as it was (no row, no blob), so that a
// later fetch cannot pick it up. A good signature on the same file works.
func TestBadSignatureStoresNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	p := writeACI(t, t.TempDir(), "app.aci", testutils.Image{Name: "example.com/app", Exec: []string{"/bin/true"}}, false)
	if err := os.WriteFile(p+".asc", []byte("forged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &fakeVerifier{}
	f := &stage0.Fetcher{Store: s, Verifier: v}
	got, err := f.Fetch(ctx, p)
	if err == nil || got != nil {
		t.Fatalf("image with a bad signature: %s, %v; want it refused", keyOf(got), err)
	}
	if v.calls != 1 {
		t.Errorf("the signature was checked %d times, want once", v.calls)
	}
	if rows := listImages(t, s); len(rows) != 0 {
		t.Errorf("the store holds %d images after a failed verification, want none", len(rows))
	}
	if blobs, _ := filepath.Glob(filepath.Join(s.Dir(), "blob", "*", "*", "*")); len(blobs) != 0 {
		t.Errorf("blobs stored after a failed verification: %v", blobs)
	}
	if err := os.WriteFile(p+".asc", []byte(goodSig), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Fetch(ctx, p); err != nil || got.SignedBy != "test-fingerprint" {
		t.Errorf("the same image with a good signature: %s, %v", keyOf(got), err)
	}
}
