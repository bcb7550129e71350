package stage0

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/tests/testutils"
)

// consentFixture is a store in a temporary directory and an image file
// whose app has isolators.
func consentFixture(t *testing.T, isolators ...string) (*Fetcher, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := imagestore.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	a := testutils.ACI{
		Image:   testutils.Image{Name: "example.com/consent", Exec: []string{"/bin/app"}},
		Entries: []testutils.Entry{testutils.Dir("rootfs/bin", 0o755), testutils.File("rootfs/bin/app", 0o755, "#!/bin/sh\n")},
	}
	for _, iso := range isolators {
		a.Image.Isolators = append(a.Image.Isolators, json.RawMessage(iso))
	}
	img := filepath.Join(dir, "consent.aci")
	if err := a.WriteFile(img); err != nil {
		t.Fatal(err)
	}
	return &Fetcher{Store: s, PullPolicy: PullNew, SkipVerify: true, Warn: func(string) {}}, img
}

// buildPodManifest checks the image's isolators that the command line
// does not replace, and lets the operator's isolators and consent through.
func TestBuildPodManifestChecksImageIsolators(t *testing.T) {
	ctx := context.Background()
	f, img := consentFixture(t, `{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}`)
	_, _, err := buildPodManifest(ctx, f, &PodSpec{Apps: []AppSpec{{Image: img}}})
	if !errors.Is(err, ErrImagePrivileges) || !strings.Contains(err.Error(), "app consent") {
		t.Fatalf("widening image: err = %v", err)
	}

	_, _, err = buildPodManifest(ctx, f, &PodSpec{Apps: []AppSpec{{Image: img}}, Consent: Consent{Capabilities: true}})
	if err != nil {
		t.Errorf("with consent: %v", err)
	}

	// The operator's --caps-remove replaces the image's retain set.
	rm, err := types.NewLinuxCapabilitiesRevokeSet("CAP_MKNOD")
	if err != nil {
		t.Fatal(err)
	}
	iso, err := rm.AsIsolator()
	if err != nil {
		t.Fatal(err)
	}
	pm, _, err := buildPodManifest(ctx, f, &PodSpec{Apps: []AppSpec{{Image: img, Isolators: types.Isolators{*iso}}}})
	if err != nil {
		t.Fatalf("with --caps-remove: %v", err)
	}
	if isos := pm.Apps[0].App.Isolators; len(isos) != 1 || isos[0].Name != types.LinuxCapabilitiesRevokeSetName {
		t.Errorf("isolators %v, want only the operator's remove set", isos)
	}

	// --pod-manifest: the image's app is checked, the manifest's own is not.
	info, err := f.Fetch(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	podManifest := func(app string) *schema.PodManifest {
		var pm schema.PodManifest
		data := `{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"a","image":{"id":"` + info.Key + `"}` + app + `}]}`
		if err := pm.UnmarshalJSON([]byte(data)); err != nil {
			t.Fatal(err)
		}
		return &pm
	}
	_, _, err = buildPodManifest(ctx, f, &PodSpec{PodManifest: podManifest("")})
	if !errors.Is(err, ErrImagePrivileges) || !strings.Contains(err.Error(), "pod manifest, app a") {
		t.Errorf("pod manifest inheriting the image's app: err = %v", err)
	}
	own := `,"app":{"exec":["/bin/app"],"user":"0","group":"0","isolators":[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]}`
	if _, _, err = buildPodManifest(ctx, f, &PodSpec{PodManifest: podManifest(own)}); err != nil {
		t.Errorf("pod manifest with its own app: %v", err)
	}
}
