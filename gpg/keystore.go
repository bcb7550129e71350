// Package gpg is rkt's OpenPGP trust store and image signature check.
//
// Trusted keys live in two configuration trees, the vendor's
// (<system-config>/trustedkeys, default /usr/lib/rkt/trustedkeys) and the
// administrator's (<local-config>/trustedkeys, default /etc/rkt/trustedkeys):
//
//	trustedkeys/root.d/<fingerprint>                 trusted for every image
//	trustedkeys/prefix.d/<prefix>/<fingerprint>      trusted for <prefix> and below
//
// Each file holds one armored public key and is named by the lowercase hex
// fingerprint of its primary key. An empty file in the local tree masks the
// vendor key at the same relative path. Prefixes match by whole path
// components: a key trusted for "example.com/app" covers
// "example.com/app/sub" but not "example.com/apple".
//
// Signatures are detached OpenPGP signatures (armored or binary) over the
// image bytes exactly as downloaded. Only RSA keys of 2048 to 4096 bits and
// ed25519 keys are accepted; revoked and expired keys are refused.
package gpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Sentinel error classes; errors returned by this package wrap one of them
// where the class matters to the caller.
var (
	// ErrNoTrustedKeys: no key at all is trusted for the image name.
	ErrNoTrustedKeys = errors.New("no trusted keys")
	// ErrUntrusted: the signature is not by a key trusted for the image
	// name, or by a key that is revoked, expired or too weak.
	ErrUntrusted = errors.New("signature not by a trusted key")
	// ErrBadSignature: the signature is missing, malformed, or does not
	// match the image.
	ErrBadSignature = errors.New("bad signature")
	// ErrKeyNotFound: Remove found no such trusted key.
	ErrKeyNotFound = errors.New("key not found")
)

const (
	rootDir   = "root.d"
	prefixDir = "prefix.d"
)

// acIdentifier is the appc image name grammar (lowercase alphanumerics,
// separated by single '-', '.', '_', '~' or '/').
var acIdentifier = regexp.MustCompile(`^[a-z0-9]+([-._~/][a-z0-9]+)*$`)

// Keystore is rkt's trust store: the vendor and local trustedkeys trees.
type Keystore struct {
	SystemDir string // <system-config>/trustedkeys (vendor, read only)
	LocalDir  string // <local-config>/trustedkeys (written by Trust and Remove)

	now func() time.Time // for tests; nil means time.Now
}

// NewKeystore returns the keystore under the given system (vendor) and
// local (admin) configuration directories, such as /usr/lib/rkt and /etc/rkt.
func NewKeystore(systemConfig, localConfig string) *Keystore {
	ks := &Keystore{}
	if systemConfig != "" {
		ks.SystemDir = filepath.Join(systemConfig, "trustedkeys")
	}
	if localConfig != "" {
		ks.LocalDir = filepath.Join(localConfig, "trustedkeys")
	}
	return ks
}

func (ks *Keystore) clock() time.Time {
	if ks.now != nil {
		return ks.now()
	}
	return time.Now()
}

// ValidatePrefix checks that prefix is a valid appc name (or name prefix)
// that can be used as a directory path under prefix.d.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("empty prefix: give --prefix with an image name prefix such as example.com/app, or --root")
	}
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("prefix %q must not start with \"/\": use an image name prefix such as example.com/app", prefix)
	}
	for _, c := range strings.Split(prefix, "/") {
		if c == ".." || c == "." {
			return fmt.Errorf("prefix %q must not contain %q components", prefix, c)
		}
	}
	if !acIdentifier.MatchString(prefix) {
		return fmt.Errorf("prefix %q is not a valid image name: use lowercase letters, digits and single '-', '.', '_', '~' or '/' between them", prefix)
	}
	return nil
}

// relPath is the key file path relative to a trustedkeys directory.
func relPath(prefix string, root bool, fpr string) string {
	if root {
		return filepath.Join(rootDir, fpr)
	}
	return filepath.Join(prefixDir, filepath.FromSlash(prefix), fpr)
}

func checkScope(prefix string, root bool) error {
	if root {
		if prefix != "" {
			return fmt.Errorf("both --root and --prefix %q given: choose one", prefix)
		}
		return nil
	}
	return ValidatePrefix(prefix)
}

// Trust stores the single public key in keyData in the local tree: in
// root.d when root is set, else under prefix.d/<prefix>. The file is named
// by the key's fingerprint, written atomically with mode 0644. The key must
// pass ParsePublicKey's checks. Trusting a key again replaces its file.
func (ks *Keystore) Trust(ctx context.Context, prefix string, root bool, keyData []byte) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkScope(prefix, root); err != nil {
		return nil, fmt.Errorf("trusting key: %w", err)
	}
	if ks.LocalDir == "" {
		return nil, errors.New("trusting key: no local configuration directory set (--local-config)")
	}
	pk, err := parseOneKey(keyData, ks.clock())
	if err != nil {
		return nil, fmt.Errorf("trusting key: %w", err)
	}
	if pk.Problem != "" {
		return nil, fmt.Errorf("refusing to trust key %s (%s): %s", pk.Fingerprint, strings.Join(pk.UserIDs, ", "), pk.Problem)
	}
	path := filepath.Join(ks.LocalDir, relPath(prefix, root, pk.Fingerprint))
	if err := writeFileAtomic(path, pk.armored); err != nil {
		return nil, fmt.Errorf("trusting key %s: %w", pk.Fingerprint, err)
	}
	k := pk.Key
	k.Path, k.Prefix, k.Root = path, prefix, root
	return &k, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed into place; directories are made 0755.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating keystore directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("creating key file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("installing key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is already visible
		d.Close()
	}
	return nil
}

// storedFile is one file found in a trustedkeys tree.
type storedFile struct {
	rel    string // relative to the tree, slash separated
	path   string
	prefix string
	root   bool
	vendor bool
	empty  bool
}

// scanTree lists the key files of one trustedkeys tree. A missing tree is
// empty. Dot files (temporary files of Trust) are skipped.
func scanTree(ctx context.Context, dir string, vendor bool) ([]storedFile, error) {
	if dir == "" {
		return nil, nil
	}
	var out []storedFile
	for _, sub := range []string{rootDir, prefixDir} {
		base := filepath.Join(dir, sub)
		err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && path == base {
					return fs.SkipDir
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != base {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if sub == rootDir && path != base {
					return fs.SkipDir // root.d is flat
				}
				return nil
			}
			info, err := os.Stat(path) // follows a symlinked key file
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			sf := storedFile{rel: filepath.ToSlash(rel), path: path, vendor: vendor, empty: info.Size() == 0}
			if sub == rootDir {
				sf.root = true
			} else {
				p, _ := filepath.Rel(base, filepath.Dir(path))
				if p == "." {
					return nil // a file directly in prefix.d has no prefix
				}
				sf.prefix = filepath.ToSlash(p)
			}
			out = append(out, sf)
			return nil
		})
		if err != nil && !errors.Is(err, fs.SkipDir) {
			return nil, fmt.Errorf("reading trusted keys in %s: %w", base, err)
		}
	}
	return out, nil
}

// effectiveFiles merges the vendor and local trees: local files win, and
// an empty local file masks the vendor file at the same path.
func (ks *Keystore) effectiveFiles(ctx context.Context) ([]storedFile, error) {
	sys, err := scanTree(ctx, ks.SystemDir, true)
	if err != nil {
		return nil, err
	}
	local, err := scanTree(ctx, ks.LocalDir, false)
	if err != nil {
		return nil, err
	}
	localByRel := make(map[string]bool, len(local))
	var out []storedFile
	for _, f := range local {
		localByRel[f.rel] = true
		if !f.empty {
			out = append(out, f)
		}
	}
	for _, f := range sys {
		if !localByRel[f.rel] && !f.empty {
			out = append(out, f)
		}
	}
	return out, nil
}

// loadFile parses a stored key file, recording why it is unusable in
// Problem rather than failing.
func (ks *Keystore) loadFile(f storedFile) *parsedKey {
	fpr := filepath.Base(f.path)
	pk := &parsedKey{Key: Key{Fingerprint: fpr}}
	data, err := readLimited(f.path, 2*MaxKeySize)
	if err == nil {
		var p *parsedKey
		p, err = parseOneKey(data, ks.clock())
		if err == nil {
			pk = p
			if pk.Fingerprint != fpr {
				pk.Problem = fmt.Sprintf("file name does not match the key's fingerprint %s; rename the file or trust the key again", pk.Fingerprint)
			}
		}
	}
	if err != nil {
		pk.Problem = fmt.Sprintf("unreadable key file: %v", err)
	}
	pk.Path, pk.Prefix, pk.Root, pk.Vendor = f.path, f.prefix, f.root, f.vendor
	return pk
}

func readLimited(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed for a key", path, info.Size(), limit)
	}
	return os.ReadFile(path)
}

// List returns every effective trusted key, vendor and local, sorted by
// root first, then prefix and fingerprint. Keys that cannot be used (expired,
// revoked, unreadable) are listed with Problem set.
func (ks *Keystore) List(ctx context.Context) ([]Key, error) {
	files, err := ks.effectiveFiles(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(files))
	for _, f := range files {
		keys = append(keys, ks.loadFile(f).Key)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Root != b.Root {
			return a.Root
		}
		if a.Prefix != b.Prefix {
			return a.Prefix < b.Prefix
		}
		if a.Fingerprint != b.Fingerprint {
			return a.Fingerprint < b.Fingerprint
		}
		return !a.Vendor
	})
	return keys, nil
}

// Remove stops trusting the key with the given fingerprint for prefix (or
// root). A local key file is deleted; a vendor key is masked with an empty
// local file. It returns an error wrapping ErrKeyNotFound when no such key
// is trusted.
func (ks *Keystore) Remove(ctx context.Context, fingerprint string, prefix string, root bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fpr, err := NormalizeFingerprint(fingerprint)
	if err != nil {
		return err
	}
	if err := checkScope(prefix, root); err != nil {
		return fmt.Errorf("removing key: %w", err)
	}
	if ks.LocalDir == "" {
		return errors.New("removing key: no local configuration directory set (--local-config)")
	}
	scope := "root.d"
	if !root {
		scope = "prefix " + prefix
	}
	rel := relPath(prefix, root, fpr)
	localPath := filepath.Join(ks.LocalDir, rel)
	vendor := false
	if ks.SystemDir != "" {
		if info, err := os.Stat(filepath.Join(ks.SystemDir, rel)); err == nil && info.Mode().IsRegular() && info.Size() > 0 {
			vendor = true
		}
	}
	info, err := os.Stat(localPath)
	localExists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing key %s: %w", fpr, err)
	}
	switch {
	case vendor && localExists && info.Size() == 0:
		return fmt.Errorf("vendor key %s is already masked for %s by %s: %w", fpr, scope, localPath, ErrKeyNotFound)
	case vendor:
		if err := writeFileAtomic(localPath, nil); err != nil {
			return fmt.Errorf("masking vendor key %s: %w", fpr, err)
		}
		return nil
	case localExists:
		if err := os.Remove(localPath); err != nil {
			return fmt.Errorf("removing key %s: %w", fpr, err)
		}
		if !root {
			removeEmptyDirs(filepath.Dir(localPath), filepath.Join(ks.LocalDir, prefixDir))
		}
		return nil
	}
	return fmt.Errorf("key %s is not trusted for %s (see rkt trust list): %w", fpr, scope, ErrKeyNotFound)
}

// removeEmptyDirs removes dir and its parents up to (not including) stop
// while they are empty.
func removeEmptyDirs(dir, stop string) {
	for dir != stop && strings.HasPrefix(dir, stop+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// namePrefixes returns the path-component prefixes of name, shortest
// first: "a.com/b/c" gives "a.com", "a.com/b", "a.com/b/c".
func namePrefixes(name string) []string {
	parts := strings.Split(name, "/")
	out := make([]string, 0, len(parts))
	for i := range parts {
		out = append(out, strings.Join(parts[:i+1], "/"))
	}
	return out
}

// keysFor returns the keys trusted for the image name: root keys plus keys
// of every prefix that equals name or is a path-component prefix of it.
func (ks *Keystore) keysFor(ctx context.Context, name string) ([]*parsedKey, error) {
	files, err := ks.effectiveFiles(ctx)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool)
	for _, p := range namePrefixes(name) {
		want[p] = true
	}
	var out []*parsedKey
	for _, f := range files {
		if f.root || want[f.prefix] {
			out = append(out, ks.loadFile(f))
		}
	}
	return out, nil
}
