package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/networking/netflag"
	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// AppSpec is one app of a pod as given on the command line.
type AppSpec struct {
	Image             string
	Name              string
	Exec              string   // --exec: replaces the image's executable
	Args              []string // after "--": replace the image's arguments
	User, Group       string
	SupplementaryGIDs []int
	WorkingDir        string
	Environment       []string // K=V, per app (highest precedence)
	Mounts            []schema.Mount
	ReadOnlyRootFS    bool
	Isolators         []types.Isolator // replace the image's isolators of the same name
	Annotations       map[string]string
	Signature         string
}

// PodSpec is a whole pod as given on the command line.
type PodSpec struct {
	Apps        []AppSpec
	Volumes     []types.Volume
	SetEnv      []string // --set-env (K=V), pod-wide
	SetEnvFile  []string // lines of --set-env-file
	InheritEnv  bool
	Annotations map[string]string
	Stage1      Stage1Ref
	// PodManifest, when set (--pod-manifest), is used as is; Apps must be
	// empty.
	PodManifest *schema.PodManifest
	// Ports are the --port flags, matched with the images' ports into the
	// pod manifest's ports (stage1 forwards them).
	Ports []netflag.PortFlag
	// Hostname is --hostname ("" = rkt-<uuid>), for the hosts file.
	Hostname string
	// DNS and HostsEntries are --dns* and --hosts-entry: with values, stage0
	// writes the pod's resolv.conf and hosts (docs/stage1-abi.md).
	DNS          netflag.DNSFlags
	HostsEntries []string
	// Consent is what the operator allowed beyond the default isolation
	// (--insecure-options): it lets images widen their apps' privileges.
	Consent Consent
	// RunArgs, when set, is recorded in the pod manifest (AnnoRunArgs)
	// for `rkt generate systemd UUID`.
	RunArgs *RunArgs
}

// DNSConfMode returns stage1's --dns-conf-mode for the spec's DNS and hosts
// flags, after checking them.
func (spec *PodSpec) DNSConfMode() (string, error) {
	resolv, err := spec.DNS.Mode()
	if err != nil {
		return "", err
	}
	hostsMode := "default"
	host, entries, err := netflag.ParseHostsEntries(spec.HostsEntries)
	switch {
	case err != nil:
		return "", err
	case host:
		hostsMode = "host"
	case len(entries) > 0:
		hostsMode = "stage0"
	}
	return "resolv=" + resolv + ",hosts=" + hostsMode, nil
}

// Prepared is a pod directory ready for stage1.
type Prepared struct {
	Pod       *pod.Pod
	Stage1    *Stage1
	Manifest  *schema.PodManifest
	TreeLocks []*lock.Lock // shared locks on every tree the pod uses
	imageKeys []string
	treeIDs   []string
	store     *imagestore.Store
}

// Abort removes a pod that will not run: it is moved to garbage and
// deleted, and all locks are released. It tries every step even when one
// fails (a full disk does not stop a rename or a removal), so that no
// "aborted prepare" pod stays behind, and returns the first error.
func (pr *Prepared) Abort() error {
	pr.Close()
	if pr.Pod == nil {
		return nil
	}
	var first error
	if pr.Pod.Phase == pod.PhasePrepare || pr.Pod.Phase == pod.PhasePrepared {
		first = pr.Pod.ToGarbage()
	}
	if err := pr.Pod.Remove(); err != nil && first == nil {
		first = err
	}
	pr.Pod.Unlock()
	return first
}

// Close releases the tree locks (after a failure; on success stage1
// inherits them).
func (pr *Prepared) Close() {
	for _, l := range pr.TreeLocks {
		l.Close()
	}
	pr.TreeLocks = nil
}

// Prepare fetches what the pod needs, creates its directory (in prepare/,
// locked) and writes everything stage1 reads. On failure, including a
// cancelled ctx, the pod directory is removed.
func Prepare(ctx context.Context, f *Fetcher, podsDir string, spec *PodSpec, phase func(string)) (*Prepared, error) {
	if phase == nil {
		phase = func(string) {}
	}
	s1, err := f.FetchStage1(ctx, spec.Stage1)
	if err != nil {
		return nil, err
	}
	phase("stage1 image")
	pm, infos, err := buildPodManifest(ctx, f, spec)
	if err != nil {
		return nil, err
	}
	if err := recordRunArgs(pm, spec.RunArgs); err != nil {
		return nil, err
	}
	phase("app images and pod manifest")
	pr := &Prepared{Stage1: s1, Manifest: pm, store: f.Store}
	err = pr.create(podsDir, func() error {
		if err := pr.lockTrees(ctx, s1.Info, infos); err != nil {
			return err
		}
		if err := pr.writePodDir(s1, infos); err != nil {
			return err
		}
		return writeNetFiles(pr.Pod, spec)
	})
	if err != nil {
		return nil, err
	}
	phase("pod directory")
	return pr, nil
}

// create makes the pod directory and runs fill to fill it in. When fill
// fails the pod is aborted: nothing is left in any phase directory.
func (pr *Prepared) create(podsDir string, fill func() error) error {
	p, err := pod.Create(podsDir)
	if err != nil {
		return fmt.Errorf("creating pod directory: %w", err)
	}
	pr.Pod = p
	if err := fill(); err != nil {
		if aerr := pr.Abort(); aerr != nil {
			return fmt.Errorf("%w (and removing the unfinished pod %s failed: %v; rkt gc removes it)", err, p.UUID, aerr)
		}
		return err
	}
	return nil
}

func (pr *Prepared) lockTrees(ctx context.Context, s1 *imagestore.ImageInfo, infos []*imagestore.ImageInfo) error {
	seen := map[string]bool{}
	for _, info := range append([]*imagestore.ImageInfo{s1}, infos...) {
		if seen[info.Key] {
			continue
		}
		seen[info.Key] = true
		pr.imageKeys = append(pr.imageKeys, info.Key)
		// An ACI has one tree; a layered image one per layer.
		for _, t := range info.Trees() {
			if seen["tree "+t] {
				continue
			}
			seen["tree "+t] = true
			l, err := pr.store.UseTree(ctx, t)
			if err != nil {
				return fmt.Errorf("waiting for image %s (its tree is locked by an image removal or gc): %w", imagestore.ShortKey(info.Key), err)
			}
			pr.TreeLocks = append(pr.TreeLocks, l)
			pr.treeIDs = append(pr.treeIDs, t)
		}
		// The image may have been removed between the fetch and the lock.
		if _, err := pr.store.LowerDirs(info); err != nil {
			return err
		}
	}
	return nil
}

// writePodDir writes the files of docs/stage1-abi.md.
func (pr *Prepared) writePodDir(s1 *Stage1, infos []*imagestore.ImageInfo) error {
	dir := pr.Pod.Path()
	data, err := pr.Manifest.MarshalJSON()
	if err != nil {
		return err
	}
	// Few files: each costs an inode, and on some file systems (ext4
	// without a journal, after many deletions) a new inode costs much
	// more than its bytes. The pod's creation time is the pod manifest's
	// mtime.
	// The stage1 rootfs is recorded relative to the pod directory (all
	// phases are at the same depth below the data dir), so that rkt run
	// from another root or mount namespace, where the data dir has
	// another path, finds it.
	s1Rootfs, err := filepath.Rel(dir, s1.Rootfs)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"pod":                          data,
		stage1abi.Stage1ManifestFile:   s1.Info.Manifest,
		stage1abi.Stage1RootfsPathFile: []byte(s1Rootfs + "\n"),
		stage1abi.TreeIDsFile:          []byte(strings.Join(pr.treeIDs, "\n") + "\n"),
	}
	for i, ra := range pr.Manifest.Apps {
		lowers, err := appLowerDirs(pr.store, infos[i])
		if err != nil {
			return err
		}
		files[stage1abi.AppManifest(ra.Name.String())] = infos[i].Manifest
		files[stage1abi.AppLowerDirs(ra.Name.String())] = lowers
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return err
		}
		// No fsync: a pod directory that does not survive a crash is
		// garbage anyway, and fsyncs are the start path's biggest cost.
		// Readable by all who may enter the pod directory (0750: root,
		// and the group the pods directory is shared with).
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
	}
	return pr.reserveStatus()
}

// appLowerDirs is the content of an app's lowerdirs file: the image's
// trees, one per line, top first (an ACI's one tree; a layered image's
// layers from the last to the first), as overlayfs stacks them.
func appLowerDirs(s *imagestore.Store, info *imagestore.ImageInfo) ([]byte, error) {
	dirs, err := s.LowerDirs(info)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, d := range dirs {
		if strings.ContainsAny(d, ":,\n") {
			return nil, fmt.Errorf("image tree path %s contains ':', ',' or a newline, which overlayfs cannot take: use a --dir without them", d)
		}
		b.WriteString(d + "\n")
	}
	return []byte(b.String()), nil
}

// reserveStatus creates every app's exit status file, empty and with
// its space allocated, so that stage1 can record how the apps ended even
// when they filled the file system (docs/stage1-abi.md).
func (pr *Prepared) reserveStatus() error {
	dir := filepath.Join(pr.Pod.Path(), exitstatus.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, ra := range pr.Manifest.Apps {
		if err := exitstatus.Reserve(filepath.Join(dir, ra.Name.String())); err != nil {
			return fmt.Errorf("reserving the exit status of app %s: %w", ra.Name, err)
		}
	}
	return nil
}

// Touch records that the pod's images were used (cheap, no fsync; called
// after stage1 started or just before exec).
func (pr *Prepared) Touch() {
	pr.store.Touch(pr.imageKeys...)
}

// errNoApps is returned for a pod without apps.
var errNoApps = errors.New("no image given: rkt run IMAGE [flags] [--- IMAGE2 ...]")

// writeNetFiles writes the resolv.conf and hosts file stage1 uses when
// --dns-conf-mode says stage0.
func writeNetFiles(p *pod.Pod, spec *PodSpec) error {
	etc := filepath.Join(p.Path(), stage1abi.Stage1RootfsDir, "etc")
	if mode, _ := spec.DNS.Mode(); mode == netflag.ResolvStage0 {
		if err := os.MkdirAll(etc, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(etc, "rkt-resolv.conf"), netflag.ResolvConf(spec.DNS.DNS()), 0o644); err != nil {
			return err
		}
	}
	if _, entries, _ := netflag.ParseHostsEntries(spec.HostsEntries); len(entries) > 0 {
		hostname := spec.Hostname
		if hostname == "" {
			hostname = "rkt-" + p.UUID
		}
		if err := os.MkdirAll(etc, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(etc, "rkt-hosts"), netflag.HostsFile(entries, hostname, ""), 0o644); err != nil {
			return err
		}
	}
	return nil
}
