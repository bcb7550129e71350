package imagestore

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"path/filepath"
	"strings"
)

// Keys name content by digest, with the algorithm in the key:
//
//	sha512-<64 hex>   an ACI: the first 256 bits of the SHA-512 of the
//	                  uncompressed image (rkt's image IDs)
//	sha256:<64 hex>   an OCI blob (manifest, config or layer) or a
//	                  layer's diff ID: the SHA-256 of the bytes
//
// On disk a key becomes a file or directory name with '-' for ':' (a
// colon cannot appear in an overlayfs lowerdir option).
const (
	ACIKeyPrefix    = "sha512-"
	SHA256KeyPrefix = "sha256:"
)

// keyAlgs are the algorithms of keys: prefix, directory under blob/, hex
// length of a full key, hash.
var keyAlgs = []struct {
	prefix, dir string
	hexLen      int
	hash        func() hash.Hash
}{
	{ACIKeyPrefix, "sha512", 64, sha512.New},
	{SHA256KeyPrefix, "sha256", 64, sha256.New},
}

// splitKey returns a key's algorithm index and hex part.
func splitKey(key string) (int, string, bool) {
	for i, a := range keyAlgs {
		if h, ok := strings.CutPrefix(key, a.prefix); ok {
			return i, h, true
		}
	}
	return 0, "", false
}

// IsKey reports whether s looks like a key (or a prefix of one): an
// algorithm prefix and 1 to 64 hex digits.
func IsKey(s string) bool {
	i, h, ok := splitKey(s)
	if !ok || len(h) < 1 || len(h) > keyAlgs[i].hexLen {
		return false
	}
	_, err := hex.DecodeString(h + strings.Repeat("0", len(h)%2))
	return err == nil
}

// isFullKey reports whether key is a complete, lower-case key.
func isFullKey(key string) bool {
	i, h, ok := splitKey(key)
	return ok && len(h) == keyAlgs[i].hexLen && IsKey(key) && strings.ToLower(h) == h
}

// ShortKey is the 12-hex form rkt shows.
func ShortKey(key string) string {
	if _, h, ok := splitKey(key); ok && len(h) > 12 {
		return key[:len(key)-len(h)+12]
	}
	return key
}

// keyFileName is a key as a file name: sha512-<hex>, sha256-<hex>.
func keyFileName(key string) string { return strings.Replace(key, ":", "-", 1) }

// keyOfFileName is the inverse of keyFileName, for names found on disk.
func keyOfFileName(dir, name string) (string, bool) {
	for _, a := range keyAlgs {
		if a.dir == dir {
			key := name
			if a.prefix == SHA256KeyPrefix {
				h, ok := strings.CutPrefix(name, "sha256-")
				if !ok {
					return "", false
				}
				key = SHA256KeyPrefix + h
			}
			return key, isFullKey(key)
		}
	}
	return "", false
}

// LayerTreeID is the tree of a layer: named by its diff ID, so that
// images sharing a layer share its tree.
func LayerTreeID(diffID string) string { return keyFileName(diffID) }

func (s *Store) blobPath(key string) string {
	i, h, ok := splitKey(key)
	if !ok || len(h) < 2 {
		return filepath.Join(s.dir, "blob", "invalid", keyFileName(key))
	}
	return filepath.Join(s.dir, "blob", keyAlgs[i].dir, h[:2], keyFileName(key))
}

// hashFor returns a new hash of a key's algorithm.
func hashFor(key string) (hash.Hash, error) {
	i, _, ok := splitKey(key)
	if !ok || !isFullKey(key) {
		return nil, fmt.Errorf("%q is not a digest: want sha256:<64 hex> or sha512-<64 hex>", key)
	}
	return keyAlgs[i].hash(), nil
}

// keyOfSum is the key of a finished hash for the algorithm of like. An
// ACI key keeps the first 256 bits of the SHA-512.
func keyOfSum(like string, sum []byte) string {
	if strings.HasPrefix(like, ACIKeyPrefix) {
		return ACIKeyPrefix + hex.EncodeToString(sum[:32])
	}
	return SHA256KeyPrefix + hex.EncodeToString(sum)
}
