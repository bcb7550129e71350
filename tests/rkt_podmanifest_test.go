package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/tests/testutils"
)

// TestRunPodManifest runs an appc pod manifest given with --pod-manifest:
// an app taking its image's app, and one with its own exec.
func TestRunPodManifest(t *testing.T) {
	testutils.RequireRoot(t)
	entries, err := testutils.BusyboxEntries()
	if err != nil {
		t.Fatal(err)
	}
	c := testutils.NewRktCtx(t)
	t.Cleanup(func() { c.Run("gc", "--grace-period=0s") })
	dir := t.TempDir()
	img := writeACI(t, dir, "pm.aci", testutils.ACI{Image: testutils.Image{Name: "example.com/pm",
		Exec: []string{"/bin/sh", "-c", "echo from the image"}}, Entries: entries})
	id := fetchOK(t, c, "--full", img)[0]
	pm := fmt.Sprintf(`{"acVersion":"0.8.11","acKind":"PodManifest","apps":[
		{"name":"one","image":{"id":%q}},
		{"name":"two","image":{"id":%q},"app":{"exec":["/bin/sh","-c","echo from the manifest"],"user":"0","group":"0"}}]}`, id, id)
	pmFile := filepath.Join(dir, "pod.json")
	if err := os.WriteFile(pmFile, []byte(pm), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.Run("--insecure-options=image", "run", "--net=none", "--pod-manifest="+pmFile)
	if r.Exit != 0 || !strings.Contains(r.Stdout, "from the image") || !strings.Contains(r.Stdout, "from the manifest") {
		t.Fatalf("run --pod-manifest: %s", describeResult([]string{"run"}, r))
	}
	// Images cannot be combined with --pod-manifest.
	c.MustFail(254, "--pod-manifest cannot be combined", "--insecure-options=image", "run", "--pod-manifest="+pmFile, img)
}

// TestRunFlyDefaultNet runs the fly flavor without --net: stage0 passes the
// stage1's own default network (host), which is all fly can do.
func TestRunFlyDefaultNet(t *testing.T) {
	e := newRealEnv(t)
	requireStage1Beside(t, e.Bin, "stage1-fly.aci")
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{insecureImage, "run", "--stage1-from-dir=stage1-fly.aci", e.img, "--exec=/inspect", "--", "--print-netns"}
	r := e.Run(args...)
	if r.Exit != 0 {
		t.Fatalf("fly without --net: %s", describeResult(args, r))
	}
	wantValue(t, r.Stdout, "netns", hostNS)
}
