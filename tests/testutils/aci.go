// Package testutils holds fixtures for rkt's tests: a deterministic ACI
// (appc image) builder that needs no root, entry sets for busybox and the
// inspect test app, and the harness that runs the built rkt binary in
// functional tests with its own temporary data and config directories.
//
// The ACI builder writes entries verbatim, so tests can also make hostile
// archives ("..", absolute names, device nodes, hardlinks out, duplicates).
package testutils

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// FixedTime is the modification time of every entry that does not give its
// own, so that the same inputs always build byte-identical images.
var FixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Entry is one tar entry of an ACI. It is written verbatim: the name is not
// cleaned and nothing is checked. Only two blanks are filled: a zero ModTime
// becomes FixedTime, and a regular file with Size 0 gets len(Body).
type Entry struct {
	Header tar.Header
	Body   []byte
}

// Compression is how an ACI is compressed.
type Compression string

// The supported compressions. The empty string means CompressionNone.
const (
	CompressionNone  Compression = "none"
	CompressionGzip  Compression = "gzip"
	CompressionBzip2 Compression = "bzip2"
	CompressionXz    Compression = "xz"
	CompressionZstd  Compression = "zstd"
)

// Port is an app port of an image manifest.
type Port struct {
	Name, Protocol string
	Port           uint
}

// MountPoint is an app mount point of an image manifest.
type MountPoint struct {
	Name, Path string
	ReadOnly   bool
}

// EventHandler is an app event handler of an image manifest (Name
// "pre-start" or "post-stop").
type EventHandler struct {
	Name string
	Exec []string
}

// Dependency is an image dependency. ImageID ("sha512-...") is optional.
type Dependency struct {
	ImageName string
	Labels    map[string]string
	ImageID   string
}

// Image describes an image manifest in plain Go types. Labels "os" and "arch"
// default to linux and the host architecture (amd64 here). The manifest has
// an app section when any app field (Exec, User, Group, WorkingDir, Env,
// Ports, MountPoints, Isolators, EventHandlers) is set; User and Group
// default to "0".
type Image struct {
	Name          string
	Labels        map[string]string
	Exec          []string
	User, Group   string
	WorkingDir    string
	Env           map[string]string
	Ports         []Port
	MountPoints   []MountPoint
	Annotations   map[string]string
	Dependencies  []Dependency
	PathWhitelist []string
	Isolators     []json.RawMessage // each {"name": ..., "value": ...}
	EventHandlers []EventHandler
}

// ACI is an image to build.
type ACI struct {
	// Manifest is the raw manifest; if nil, ManifestJSON(Image) is used.
	Manifest []byte
	// Image describes the manifest when Manifest is nil.
	Image Image
	// Entries are the rootfs entries ("rootfs/..."). They are sorted by
	// name (stably: duplicates keep their order) unless KeepOrder is set. A
	// "rootfs" directory entry is added first if none is given.
	Entries []Entry
	// Compression of the output; empty means none.
	Compression Compression
	// OmitManifest leaves out the manifest entry (for hostile tests).
	OmitManifest bool
	// KeepOrder writes Entries in the given order (for hostile tests that
	// need, say, a file before its parent directory).
	KeepOrder bool
}

// appcArch is the appc name of the host architecture, "amd64" if unknown.
func appcArch() string {
	if _, arch, err := types.ToAppcOSArch("linux", runtime.GOARCH, ""); err == nil {
		return arch
	}
	return "amd64"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func toLabels(m map[string]string) (types.Labels, error) {
	lm := make(map[types.ACIdentifier]string, len(m))
	for k, v := range m {
		id, err := types.NewACIdentifier(k)
		if err != nil {
			return nil, fmt.Errorf("label name %q: %w", k, err)
		}
		lm[*id] = v
	}
	labels, err := types.LabelsFromMap(lm)
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return labels, nil
}

func (img *Image) hasApp() bool {
	return len(img.Exec) > 0 || img.User != "" || img.Group != "" || img.WorkingDir != "" ||
		len(img.Env) > 0 || len(img.Ports) > 0 || len(img.MountPoints) > 0 || len(img.Isolators) > 0 ||
		len(img.EventHandlers) > 0
}

func (img *Image) app() (*types.App, error) {
	if !img.hasApp() {
		return nil, nil
	}
	app := &types.App{Exec: img.Exec, User: img.User, Group: img.Group, WorkingDirectory: img.WorkingDir}
	if app.User == "" {
		app.User = "0"
	}
	if app.Group == "" {
		app.Group = "0"
	}
	for _, k := range sortedKeys(img.Env) {
		app.Environment.Set(k, img.Env[k])
	}
	for _, p := range img.Ports {
		name, err := types.NewACName(p.Name)
		if err != nil {
			return nil, fmt.Errorf("port name %q: %w", p.Name, err)
		}
		app.Ports = append(app.Ports, types.Port{Name: *name, Protocol: p.Protocol, Port: p.Port, Count: 1})
	}
	for _, m := range img.MountPoints {
		name, err := types.NewACName(m.Name)
		if err != nil {
			return nil, fmt.Errorf("mount point name %q: %w", m.Name, err)
		}
		app.MountPoints = append(app.MountPoints, types.MountPoint{Name: *name, Path: m.Path, ReadOnly: m.ReadOnly})
	}
	for i, raw := range img.Isolators {
		var iso types.Isolator
		if err := json.Unmarshal(raw, &iso); err != nil {
			return nil, fmt.Errorf("isolator %d (%s): %w", i, raw, err)
		}
		app.Isolators = append(app.Isolators, iso)
	}
	for _, h := range img.EventHandlers {
		app.EventHandlers = append(app.EventHandlers, types.EventHandler{Name: h.Name, Exec: h.Exec})
	}
	return app, nil
}

// ManifestJSON returns the appc image manifest (acKind ImageManifest,
// acVersion 0.8.11) for img. It is validated by the appc schema types, so
// an invalid description fails here; set ACI.Manifest for invalid manifests.
func ManifestJSON(img Image) ([]byte, error) {
	name, err := types.NewACIdentifier(img.Name)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w", img.Name, err)
	}
	im := schema.BlankImageManifest()
	im.Name = *name
	labels := map[string]string{"os": "linux", "arch": appcArch()}
	for k, v := range img.Labels {
		labels[k] = v
	}
	if im.Labels, err = toLabels(labels); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	if im.App, err = img.app(); err != nil {
		return nil, fmt.Errorf("image %s: app: %w", img.Name, err)
	}
	for _, k := range sortedKeys(img.Annotations) {
		id, err := types.NewACIdentifier(k)
		if err != nil {
			return nil, fmt.Errorf("image %s: annotation name %q: %w", img.Name, k, err)
		}
		im.Annotations.Set(*id, img.Annotations[k])
	}
	for _, d := range img.Dependencies {
		dn, err := types.NewACIdentifier(d.ImageName)
		if err != nil {
			return nil, fmt.Errorf("image %s: dependency name %q: %w", img.Name, d.ImageName, err)
		}
		dep := types.Dependency{ImageName: *dn}
		if dep.Labels, err = toLabels(d.Labels); err != nil {
			return nil, fmt.Errorf("image %s: dependency %s: %w", img.Name, d.ImageName, err)
		}
		if d.ImageID != "" {
			if dep.ImageID, err = types.NewHash(d.ImageID); err != nil {
				return nil, fmt.Errorf("image %s: dependency %s: image ID %q: %w", img.Name, d.ImageName, d.ImageID, err)
			}
		}
		im.Dependencies = append(im.Dependencies, dep)
	}
	im.PathWhitelist = img.PathWhitelist
	data, err := json.Marshal(im)
	if err != nil {
		return nil, fmt.Errorf("image %s: invalid manifest: %w", img.Name, err)
	}
	return data, nil
}

// imageName prefixes name with "rootfs/" unless it is "manifest", "rootfs"
// or already starts with "rootfs/". A leading "/" is dropped first.
func imageName(name string) string {
	if name == "manifest" || name == "rootfs" || strings.HasPrefix(name, "rootfs/") {
		return name
	}
	return "rootfs/" + strings.TrimPrefix(name, "/")
}

// File is a regular file entry owned by 0:0. mode holds permission bits and
// may include setuid (04000), setgid (02000) and sticky (01000).
func File(name string, mode int64, body string) Entry {
	return Entry{
		Header: tar.Header{Typeflag: tar.TypeReg, Name: imageName(name), Mode: mode, Size: int64(len(body))},
		Body:   []byte(body),
	}
}

// Dir is a directory entry owned by 0:0.
func Dir(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: imageName(name), Mode: mode}}
}

// Symlink is a symbolic link entry; target is stored as given.
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: imageName(name), Linkname: target, Mode: 0o777}}
}

// Hardlink is a hard link entry. target names another entry of the archive
// and is prefixed like name ("bin/sh" links to "rootfs/bin/sh").
func Hardlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: imageName(name), Linkname: imageName(target), Mode: 0o644}}
}

func writeEntry(tw *tar.Writer, e Entry) error {
	h := e.Header
	if h.ModTime.IsZero() {
		h.ModTime = FixedTime
	}
	if (h.Typeflag == tar.TypeReg || h.Typeflag == 0) && h.Size == 0 {
		h.Size = int64(len(e.Body))
	}
	if err := tw.WriteHeader(&h); err != nil {
		return fmt.Errorf("tar header of %q: %w", h.Name, err)
	}
	if len(e.Body) > 0 {
		if _, err := tw.Write(e.Body); err != nil {
			return fmt.Errorf("tar body of %q: %w", h.Name, err)
		}
	}
	return nil
}

// manifestBytes returns the manifest to write.
func (a *ACI) manifestBytes() ([]byte, error) {
	if a.Manifest != nil {
		return a.Manifest, nil
	}
	return ManifestJSON(a.Image)
}

// entries returns the entries in writing order, with the rootfs directory.
func (a *ACI) entries() []Entry {
	es := make([]Entry, 0, len(a.Entries)+1)
	hasRoot := false
	for _, e := range a.Entries {
		if e.Header.Name == "rootfs" || e.Header.Name == "rootfs/" {
			hasRoot = true
		}
	}
	if !hasRoot {
		es = append(es, Dir("rootfs", 0o755))
	}
	es = append(es, a.Entries...)
	if !a.KeepOrder {
		sort.SliceStable(es, func(i, j int) bool { return es[i].Header.Name < es[j].Header.Name })
	}
	return es
}

// Write writes the ACI, compressed as asked, to w: the manifest entry, then
// the entries. The same ACI always gives the same bytes.
func (a *ACI) Write(w io.Writer) error {
	var manifest []byte
	if !a.OmitManifest {
		var err error
		if manifest, err = a.manifestBytes(); err != nil {
			return fmt.Errorf("build ACI: %w", err)
		}
	}
	cw, err := newCompressor(a.Compression, w)
	if err != nil {
		return fmt.Errorf("build ACI: %w", err)
	}
	tw := tar.NewWriter(cw)
	werr := func() error {
		if !a.OmitManifest {
			if err := writeEntry(tw, File("manifest", 0o644, string(manifest))); err != nil {
				return err
			}
		}
		for _, e := range a.entries() {
			if err := writeEntry(tw, e); err != nil {
				return err
			}
		}
		return tw.Close()
	}()
	cerr := cw.Close()
	if werr != nil {
		return fmt.Errorf("build ACI: %w", werr)
	}
	if cerr != nil {
		return fmt.Errorf("build ACI: %s compression: %w", a.Compression, cerr)
	}
	return nil
}

// Bytes returns the ACI as written by Write.
func (a *ACI) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if err := a.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteFile writes the ACI to path (mode 0644), through a temporary file in
// the same directory renamed into place, so path is never half-written.
func (a *ACI) WriteFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write ACI %s: %w", path, err)
	}
	tmp := f.Name()
	err = a.Write(f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write ACI %s: %w", path, err)
	}
	return nil
}
