package stage0

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/imagestore/storetest"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// TestPodDirOfLayeredImage: for an image of two layers, stage0 writes both
// layer trees as the app's lower directories, top first, lists both in the
// pod's tree-ids and holds both trees for the pod's lifetime.
func TestPodDirOfLayeredImage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := imagestore.Open(filepath.Join(dir, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	bottom := storetest.NewLayer(t, storetest.File("etc/os-release", "bottom"), storetest.File("bottom", "b"))
	top := storetest.NewLayer(t, storetest.File("etc/os-release", "top"))
	info := storetest.PutImage(t, s, "example.com/layered", bottom, top)
	s1Rootfs := filepath.Join(dir, "stage1-rootfs")
	os.Mkdir(s1Rootfs, 0o755)
	s1 := &Stage1{Info: &imagestore.ImageInfo{Key: "sha512-" + strings.Repeat("0", 64), Manifest: []byte("{}")}, Rootfs: s1Rootfs}

	pr := &Prepared{store: s, Manifest: &schema.PodManifest{ACKind: "PodManifest", ACVersion: schema.AppContainerVersion,
		Apps: schema.AppList{{Name: types.ACName("app"), Image: schema.RuntimeImage{ID: *types.NewHashSHA512([]byte("x"))}}}}}
	if pr.Pod, err = pod.Create(filepath.Join(dir, "pods")); err != nil {
		t.Fatal(err)
	}
	defer pr.Abort()
	if err := pr.lockTrees(ctx, info, nil); err != nil {
		t.Fatal(err)
	}
	if err := pr.writePodDir(s1, []*imagestore.ImageInfo{info}); err != nil {
		t.Fatal(err)
	}
	want, err := s.LowerDirs(info)
	if err != nil {
		t.Fatal(err)
	}
	if want[0] != filepath.Join(s.TreePath(imagestore.LayerTreeID(top.Desc.DiffID)), "rootfs") {
		t.Fatalf("LowerDirs does not start with the top layer: %v", want)
	}
	got, err := os.ReadFile(filepath.Join(pr.Pod.Path(), stage1abi.AppLowerDirs("app")))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want[0]+"\n"+want[1]+"\n" {
		t.Errorf("lowerdirs = %q, want %q", got, want[0]+"\n"+want[1]+"\n")
	}
	ids, err := os.ReadFile(filepath.Join(pr.Pod.Path(), stage1abi.TreeIDsFile))
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(ids)); len(f) != 2 || f[0] != info.Trees()[0] || f[1] != info.Trees()[1] {
		t.Errorf("tree-ids = %q, want both layer trees %v", ids, info.Trees())
	}
	if err := s.Remove(ctx, info.Key); !errors.Is(err, imagestore.ErrInUse) {
		t.Errorf("Remove of an image a pod holds: %v, want ErrInUse", err)
	}
}
