// Package stage0 is the library behind the rkt CLI: it resolves image
// references, fetches and verifies images into the store, and (in later
// files) prepares pods and hands them to stage1.
package stage0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/stage0/fetch"
)

// PullPolicy says when to contact the image's origin.
type PullPolicy string

// The pull policies, as in rkt.
const (
	PullNew    PullPolicy = "new"    // use the store if it has the image
	PullUpdate PullPolicy = "update" // always ask the origin (cheap with ETag / max-age)
	PullNever  PullPolicy = "never"  // store only
	// PullDefault is rkt fetch's default: a name the store has is used as
	// it is (PullNew: fetching it does not depend on its origin being up),
	// while a URL or file is asked again (PullUpdate: cheap with ETag,
	// max-age and file fingerprints).
	PullDefault PullPolicy = ""
)

// ParsePullPolicy checks a --pull-policy value ("" is PullDefault).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case PullNew, PullUpdate, PullNever, PullDefault:
		return p, nil
	}
	return "", fmt.Errorf("unknown pull policy %q: want new, update or never", s)
}

// Verifier checks a detached signature of an image file (exactly as
// fetched) against the keys trusted for the image's name, and returns the
// signing key's fingerprint.
type Verifier interface {
	Verify(ctx context.Context, name string, image io.ReadSeeker, sig io.Reader) (signer string, err error)
}

// Fetcher gets images into the store.
type Fetcher struct {
	Store        *imagestore.Store
	PullPolicy   PullPolicy
	InsecureHTTP bool
	InsecureTLS  bool
	// SkipVerify skips signature checks (--insecure-options=image); the
	// caller is told through Warn every time.
	SkipVerify bool
	Verifier   Verifier
	// Signature is a detached signature file for the first image fetched
	// (--signature); otherwise <image>.asc is used.
	Signature string
	MaxSize   int64
	Progress  io.Writer // nil: quiet
	Warn      func(msg string)
	// Discover finds the URLs of an image given by name (appc discovery);
	// nil means names are resolved from the store only.
	Discover func(ctx context.Context, ref aci.NameLabels) (imageURL, sigURL string, err error)
	// HTTP holds base options for downloads (credentials, extra TLS roots).
	HTTP fetch.Options
}

// ErrNotInStore is returned with --pull-policy=never for missing images.
var ErrNotInStore = errors.New("not in the store")

// source is where one image's bytes come from.
type source struct {
	ref     string // what the user typed, for messages
	local   string // local file path, or
	url     string // remote URL
	sigURL  string // remote signature URL (for url) ("" = url + ".asc")
	sigPath string // local signature path (for local)
	base    string // directory or URL prefix dependencies are looked up in
}

// Fetch resolves ref and makes sure the image (and its dependencies) is in
// the store, returning its index row. ref is an image ID, a file path, a
// file://, https:// or http:// URL, or an appc name.
//
// Unless signature checks are off, an image the store holds unverified
// (fetched with --insecure-options=image) is refused: what runs must be
// what a trusted key signed, whenever it was fetched.
func (f *Fetcher) Fetch(ctx context.Context, ref string) (*imagestore.ImageInfo, error) {
	info, err := f.fetch(ctx, ref)
	if err != nil {
		return nil, err
	}
	if info.SignedBy == "" {
		if !f.SkipVerify {
			return nil, fmt.Errorf("image %s (%s) was stored without a signature check: fetch it again with its signature (rkt fetch --pull-policy=update), or pass --insecure-options=image", ref, imagestore.ShortKey(info.Key))
		}
		f.warn(fmt.Sprintf("image %s (%s) is not verified (--insecure-options=image)", ref, imagestore.ShortKey(info.Key)))
	}
	return info, nil
}

func (f *Fetcher) fetch(ctx context.Context, ref string) (*imagestore.ImageInfo, error) {
	if imagestore.IsKey(ref) {
		return f.Store.Resolve(ref)
	}
	src, err := f.classify(ref)
	if err != nil {
		return nil, err
	}
	if src == nil { // an appc name: PullDefault is PullNew
		return f.fetchName(ctx, ref)
	}
	if f.PullPolicy == PullDefault {
		f.PullPolicy = PullUpdate
		defer func() { f.PullPolicy = PullDefault }()
	}
	return f.fetchSource(ctx, src, aci.NameLabels{})
}

// classify turns a reference into a file or URL source; nil means a name.
func (f *Fetcher) classify(ref string) (*source, error) {
	if u, err := url.Parse(ref); err == nil && u.Scheme != "" && strings.Contains(ref, "://") {
		switch u.Scheme {
		case "file":
			p := u.Path
			return &source{ref: ref, local: p, sigPath: f.sigFor(p), base: filepath.Dir(p)}, nil
		case "https", "http":
			return &source{ref: ref, url: ref, base: ref[:strings.LastIndex(ref, "/")+1]}, nil
		case "docker":
			return nil, fmt.Errorf("%s: docker:// images are not supported yet", ref)
		default:
			return nil, fmt.Errorf("%s: unknown URL scheme %q (want file, https or http)", ref, u.Scheme)
		}
	}
	if _, err := os.Stat(ref); err == nil {
		abs, _ := filepath.Abs(ref)
		return &source{ref: ref, local: abs, sigPath: f.sigFor(abs), base: filepath.Dir(abs)}, nil
	}
	if strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") || strings.HasSuffix(ref, ".aci") {
		return nil, fmt.Errorf("image file %s does not exist", ref)
	}
	return nil, nil
}

func (f *Fetcher) sigFor(p string) string {
	if f.Signature != "" {
		s := f.Signature
		f.Signature = "" // only for the first image
		return s
	}
	return p + ".asc"
}

// fetchName resolves an appc name from the store, or through discovery.
func (f *Fetcher) fetchName(ctx context.Context, ref string) (*imagestore.ImageInfo, error) {
	nl, err := aci.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if f.PullPolicy != PullUpdate {
		info, err := f.Store.FindByName(nl)
		if err == nil || f.PullPolicy == PullNever || !errors.Is(err, imagestore.ErrNotFound) {
			if errors.Is(err, imagestore.ErrNotFound) {
				err = fmt.Errorf("%w (--pull-policy=never: fetch it first)", err)
			}
			return info, err
		}
	}
	if f.Discover == nil {
		return nil, fmt.Errorf("image %s is not in the store, and finding images by name (appc discovery) is not available: fetch it from a file or URL", nl)
	}
	fillOSArch(&nl)
	imgURL, sigURL, err := f.Discover(ctx, nl)
	if err != nil {
		return nil, err
	}
	return f.fetchSource(ctx, &source{ref: ref, url: imgURL, sigURL: sigURL,
		base: imgURL[:strings.LastIndex(imgURL, "/")+1]}, nl)
}

func fillOSArch(nl *aci.NameLabels) {
	if nl.Labels == nil {
		nl.Labels = map[string]string{}
	}
	if _, ok := nl.Labels["os"]; !ok {
		nl.Labels["os"] = runtime.GOOS
	}
	if _, ok := nl.Labels["arch"]; !ok {
		nl.Labels["arch"] = appcArch()
	}
}

// fetchSource stages the image from src and its dependencies, verifies
// what needs verifying, then commits them all, dependencies first. If
// anything fails nothing is committed.
func (f *Fetcher) fetchSource(ctx context.Context, src *source, expect aci.NameLabels) (*imagestore.ImageInfo, error) {
	var staged []*imagestore.Staged
	defer func() {
		for _, st := range staged {
			st.Abort()
		}
	}()
	top, cached, err := f.stage(ctx, src, expect)
	if err != nil {
		return nil, err
	}
	if cached != nil {
		return cached, nil
	}
	staged = append(staged, top)
	layers, err := f.stageDeps(ctx, top, src.base, &staged, 0)
	if err != nil {
		return nil, fmt.Errorf("image %s (from %s): %w", top.Manifest.Name, src.ref, err)
	}
	for i := len(staged) - 1; i >= 0; i-- { // dependencies first
		if err := staged[i].Commit(ctx); err != nil {
			return nil, err
		}
	}
	if len(layers) > 1 || len(top.Manifest.PathWhitelist) > 0 {
		if _, err := f.Store.RenderDeps(ctx, top.Key, layers); err != nil {
			return nil, err
		}
	}
	return f.Store.Get(top.Key)
}

// maxDepDepth bounds dependency chains (and cycles).
const maxDepDepth = 16

var errDepthExceeded = fmt.Errorf("dependencies nested more than %d deep (a cycle?)", maxDepDepth)

// stageDeps stages every dependency of st not yet in the store, and
// returns the layer list (image keys, lowest first, st last).
func (f *Fetcher) stageDeps(ctx context.Context, st *imagestore.Staged, base string, staged *[]*imagestore.Staged, depth int) ([]string, error) {
	if depth > maxDepDepth {
		return nil, errDepthExceeded
	}
	var layers []string
	for _, d := range st.Manifest.Dependencies {
		nl := aci.NameLabels{Name: d.ImageName.String(), Labels: map[string]string{}}
		for _, l := range d.Labels {
			nl.Labels[l.Name.String()] = l.Value
		}
		depLayers, err := f.dependency(ctx, d.ImageID, nl, base, staged, depth)
		if errors.Is(err, errDepthExceeded) && depth > 0 {
			return nil, err // said once, by the outermost level
		}
		if err != nil {
			return nil, fmt.Errorf("dependency %s: %w", nl, err)
		}
		layers = appendNew(layers, depLayers...)
	}
	return appendNew(layers, st.Key), nil
}

func appendNew(list []string, keys ...string) []string {
	for _, k := range keys {
		found := false
		for _, l := range list {
			if l == k {
				found = true
			}
		}
		if !found {
			list = append(list, k)
		}
	}
	return list
}

// dependency finds one dependency in the store or next to its dependent.
func (f *Fetcher) dependency(ctx context.Context, id *types.Hash, nl aci.NameLabels, base string, staged *[]*imagestore.Staged, depth int) ([]string, error) {
	if info, err := f.Store.FindByName(nl); err == nil && (id == nil || id.String() == info.Key) {
		if info.SignedBy == "" && !f.SkipVerify {
			return nil, fmt.Errorf("%s (%s) was stored without a signature check: fetch it again with its signature, or pass --insecure-options=image", nl, imagestore.ShortKey(info.Key))
		}
		if len(info.Deps) == 0 {
			return []string{info.Key}, nil
		}
		return append(append([]string{}, info.Deps...), info.Key), nil
	}
	for _, cand := range depLocations(base, nl) {
		src := &source{ref: cand, base: base}
		if strings.Contains(cand, "://") {
			src.url = cand
		} else {
			if _, err := os.Stat(cand); err != nil {
				continue
			}
			src.local, src.sigPath = cand, cand+".asc"
		}
		st, cached, err := f.stage(ctx, src, nl)
		if err != nil {
			var he *fetch.HTTPError
			if errors.As(err, &he) && he.StatusCode == 404 {
				continue
			}
			return nil, err
		}
		if cached != nil {
			return append(append([]string{}, cached.Deps...), cached.Key), nil
		}
		if id != nil && id.String() != st.Key {
			st.Abort()
			return nil, fmt.Errorf("%s has ID %s, but the dependent image asks for %s", cand, st.Key, id)
		}
		*staged = append(*staged, st)
		return f.stageDeps(ctx, st, base, staged, depth+1)
	}
	return nil, fmt.Errorf("not in the store and not found beside the image (looked for %s)", strings.Join(depLocations(base, nl), ", "))
}

// depLocations lists where a dependency may sit next to its dependent:
// <base>/<last name component>[-<version>[-<os>-<arch>]].aci.
func depLocations(base string, nl aci.NameLabels) []string {
	if base == "" {
		return nil
	}
	name := path.Base(nl.Name)
	var names []string
	if v, ok := nl.Labels["version"]; ok {
		osl, arch := nl.Labels["os"], nl.Labels["arch"]
		if osl == "" {
			osl = runtime.GOOS
		}
		if arch == "" {
			arch = appcArch()
		}
		names = append(names, fmt.Sprintf("%s-%s-%s-%s.aci", name, v, osl, arch), fmt.Sprintf("%s-%s.aci", name, v))
	}
	names = append(names, name+".aci")
	out := make([]string, len(names))
	for i, n := range names {
		if strings.Contains(base, "://") {
			out[i] = base + n
		} else {
			out[i] = filepath.Join(base, n)
		}
	}
	return out
}

// appcArch is this machine's architecture in appc's spelling.
func appcArch() string {
	_, arch, err := types.ToAppcOSArch(runtime.GOOS, runtime.GOARCH, "")
	if err != nil {
		return runtime.GOARCH
	}
	return arch
}
