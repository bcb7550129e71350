// Package tests holds rkt's functional tests: they run the built rkt binary
// (build/bin/rkt, or $RKT_BIN) as root, each test with its own temporary
// data and configuration directories (see package testutils). Build the
// binary first: CGO_ENABLED=0 go build -o build/bin/rkt ./rkt.
//
// Network traffic goes only to httptest servers on 127.0.0.1.
package tests

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rkt/rkt/tests/testutils"
)

// insecureImage is needed by every fetch until signatures are checked.
const insecureImage = "--insecure-options=image"

// newImageCtx is a fresh rkt context for an image test (root only: the
// store keeps image ownership).
func newImageCtx(t *testing.T) *testutils.RktCtx {
	t.Helper()
	testutils.RequireRoot(t)
	return testutils.NewRktCtx(t)
}

// writeACI writes a to dir/file and returns the path.
func writeACI(t testing.TB, dir, file string, a testutils.ACI) string {
	t.Helper()
	p := filepath.Join(dir, file)
	if err := a.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// imageID is the full rkt image ID of a: sha512- and the first 256 bits
// of the SHA-512 of its uncompressed tar.
func imageID(t testing.TB, a testutils.ACI) string {
	t.Helper()
	a.Compression = testutils.CompressionNone
	b, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(b)
	return "sha512-" + hex.EncodeToString(sum[:32])
}

var shortIDRe = regexp.MustCompile(`^sha512-[0-9a-f]{12}$`)

// smallACI is a tiny valid image named name:version.
func smallACI(name, version, body string) testutils.ACI {
	return testutils.ACI{
		Image: testutils.Image{Name: name, Labels: map[string]string{"version": version}},
		Entries: []testutils.Entry{
			testutils.Dir("etc", 0o755),
			testutils.File("etc/body", 0o644, body),
		},
		Compression: testutils.CompressionGzip,
	}
}

// fetchOK runs rkt fetch with args and returns the printed IDs. "image" is
// added to the insecure options (a repeated --insecure-options flag
// replaces the earlier one).
func fetchOK(t testing.TB, c *testutils.RktCtx, args ...string) []string {
	t.Helper()
	out := c.MustRun(append([]string{"fetch"}, withInsecureImage(args)...)...)
	return strings.Fields(out)
}

// withInsecureImage adds "image" to the --insecure-options in args, or adds
// the flag.
func withInsecureImage(args []string) []string {
	out := make([]string, 0, len(args)+1)
	found := false
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--insecure-options="); ok && !found {
			a, found = "--insecure-options="+v+",image", true
		}
		out = append(out, a)
	}
	if !found {
		out = append([]string{insecureImage}, out...)
	}
	return out
}

// listedImage is one element of `rkt image list --format=json`.
type listedImage struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels"`
	Size       int64             `json:"size"`
	BlobSize   int64             `json:"blob_size"`
	ImportTime time.Time         `json:"import_time"`
	LastUsed   time.Time         `json:"last_used"`
	Latest     bool              `json:"latest"`
	Source     string            `json:"source"`
	MediaType  string            `json:"media_type"`
	Layers     int               `json:"layers"`
}

// listImages returns the raw JSON listing and its decoded images.
func listImages(t testing.TB, c *testutils.RktCtx) (string, []listedImage) {
	t.Helper()
	out := c.MustRun("image", "list", "--format=json")
	var imgs []listedImage
	if err := json.Unmarshal([]byte(out), &imgs); err != nil {
		t.Fatalf("image list --format=json printed %q: %v", out, err)
	}
	return out, imgs
}

// snapshotDir describes every path below dir (type, and size for regular
// files) except lock files under cas/locks/ (never removed by design) and
// the size of the index database (compare image lists instead).
func snapshotDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	return testutils.SnapshotTree(t, dir, "cas/locks", "cas/db/index.db")
}

// snapshotDiff lists what differs between two snapshots.
func snapshotDiff(before, after map[string]string) []string {
	return testutils.DiffSnapshots(before, after)
}

// storeState is what "the store is unchanged" compares: the files of the
// data dir and the image list.
type storeState struct {
	files map[string]string
	list  string
}

func captureStore(t testing.TB, c *testutils.RktCtx) storeState {
	t.Helper()
	list, _ := listImages(t, c)
	return storeState{files: snapshotDir(t, c.Dir), list: list}
}

// assertStoreUnchanged fails the test if anything differs from before.
func assertStoreUnchanged(t testing.TB, c *testutils.RktCtx, before storeState) {
	t.Helper()
	after := captureStore(t, c)
	for _, d := range snapshotDiff(before.files, after.files) {
		t.Errorf("store changed: %s", d)
	}
	if after.list != before.list {
		t.Errorf("image list changed:\nbefore: %s\nafter:  %s", before.list, after.list)
	}
}

// assertEmptyDir fails the test unless dir exists and is empty.
func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range ents {
		t.Errorf("something was written outside the store: %s", filepath.Join(dir, e.Name()))
	}
}

// runWithEnv runs rkt like RktCtx.Run, with extra environment variables.
func runWithEnv(t testing.TB, c *testutils.RktCtx, env []string, args ...string) testutils.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutils.RunTimeout)
	defer cancel()
	cmd := c.Cmd(ctx, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := testutils.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.Exit = -1
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
	default:
		t.Fatalf("run rkt %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// describeResult formats a result for failure messages.
func describeResult(args []string, r testutils.Result) string {
	return fmt.Sprintf("rkt %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Exit, r.Stdout, r.Stderr)
}
