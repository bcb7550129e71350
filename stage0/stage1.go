package stage0

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// The stage1 annotations (docs/stage1-abi.md).
const (
	AnnoRun        = stage1abi.AnnoRun
	AnnoEnter      = stage1abi.AnnoEnter
	AnnoGC         = stage1abi.AnnoGC
	AnnoStop       = stage1abi.AnnoStop
	AnnoInterface  = stage1abi.AnnoInterface
	AnnoDefaultNet = stage1abi.AnnoDefaultNet
)

// DefaultStage1 is the file name of the default stage1 image, looked for
// next to the rkt binary.
const DefaultStage1 = "stage1-default.aci"

// Stage1Ref says which stage1 image to use; at most one field is set.
type Stage1Ref struct {
	Path    string // --stage1-path: a file
	URL     string // --stage1-url
	Name    string // --stage1-name: an image name (store or discovery)
	Hash    string // --stage1-hash: an image ID in the store
	FromDir string // --stage1-from-dir: a file name in the stage1 images directory
	// ImagesDir is where FromDir and the default are looked for (the
	// directory of the rkt binary unless configured).
	ImagesDir string
}

// Stage1 is a resolved stage1 image.
type Stage1 struct {
	Info             *imagestore.ImageInfo
	Manifest         *schema.ImageManifest
	Rootfs           string
	InterfaceVersion int
}

// Entrypoint returns the absolute path of an entrypoint named by an
// annotation.
func (s *Stage1) Entrypoint(anno string) (string, error) {
	return EntrypointOf(s.Manifest, s.Rootfs, anno)
}

// EntrypointOf resolves an entrypoint of a stage1 image manifest.
func EntrypointOf(m *schema.ImageManifest, rootfs, anno string) (string, error) {
	ep, ok := m.Annotations.Get(anno)
	if !ok {
		return "", fmt.Errorf("stage1 image %s has no %s entrypoint", m.Name, anno)
	}
	if !strings.HasPrefix(ep, "/") || strings.Contains(ep, "..") {
		return "", fmt.Errorf("stage1 image %s: entrypoint %s=%q must be an absolute path inside the image", m.Name, anno, ep)
	}
	return filepath.Join(rootfs, ep), nil
}

// FetchStage1 resolves and fetches the stage1 image. The default image
// shipped beside rkt is trusted without a signature (it is part of the
// installation); any other stage1 is verified like every image.
func (f *Fetcher) FetchStage1(ctx context.Context, ref Stage1Ref) (*Stage1, error) {
	var info *imagestore.ImageInfo
	var err error
	sub := *f
	sub.Signature = ""
	switch {
	case ref.Hash != "":
		info, err = f.Store.Resolve(ref.Hash)
	case ref.Path != "":
		info, err = sub.Fetch(ctx, ref.Path)
	case ref.URL != "":
		info, err = sub.Fetch(ctx, ref.URL)
	case ref.Name != "":
		info, err = sub.Fetch(ctx, ref.Name)
	default:
		file := DefaultStage1
		if ref.FromDir != "" {
			file = ref.FromDir
		}
		if strings.Contains(file, "/") {
			return nil, fmt.Errorf("--stage1-from-dir takes a file name in %s, not a path: use --stage1-path", ref.ImagesDir)
		}
		p := filepath.Join(ref.ImagesDir, file)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("stage1 image %s not found (build it with make, or choose one with --stage1-path/--stage1-name)", p)
		}
		sub.SkipVerify, sub.Warn = true, nil // shipped with rkt
		if sub.PullPolicy == PullUpdate || sub.PullPolicy == PullDefault {
			sub.PullPolicy = PullNew
		}
		info, err = sub.Fetch(ctx, p)
	}
	if err != nil {
		return nil, fmt.Errorf("stage1: %w", err)
	}
	m, err := info.ParsedManifest()
	if err != nil {
		return nil, err
	}
	rootfs, err := f.Store.TreeRootfs(info)
	if err != nil {
		return nil, err
	}
	s1 := &Stage1{Info: info, Manifest: m, Rootfs: rootfs, InterfaceVersion: 1}
	if v, ok := m.Annotations.Get(AnnoInterface); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("stage1 image %s: bad %s %q", m.Name, AnnoInterface, v)
		}
		s1.InterfaceVersion = n
	}
	ep, err := s1.Entrypoint(AnnoRun)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(ep); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("stage1 image %s: its run entrypoint %s is missing or not executable", m.Name, strings.TrimPrefix(ep, rootfs))
	}
	return s1, nil
}

// ReadStage1 loads the stage1 of an existing pod from its directory.
func ReadStage1(podDir string) (*schema.ImageManifest, string, error) {
	data, err := os.ReadFile(filepath.Join(podDir, stage1abi.Stage1ManifestFile))
	if err != nil {
		return nil, "", fmt.Errorf("pod has no stage1 manifest: %w", err)
	}
	var m schema.ImageManifest
	if err := appcjson.Unmarshal(data, &m); err != nil {
		return nil, "", err
	}
	data, err = os.ReadFile(filepath.Join(podDir, stage1abi.Stage1RootfsPathFile))
	if err != nil {
		return nil, "", err
	}
	// Relative to the pod directory (absolute in pods of earlier versions).
	root := strings.TrimSpace(string(data))
	if !filepath.IsAbs(root) {
		root = filepath.Join(podDir, root)
	}
	return &m, root, nil
}
