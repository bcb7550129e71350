package testutils

import "github.com/rkt/rkt/pkg/mounts"

// unmountBelow lazily unmounts everything mounted at or below dir, deepest
// first (pkg/mounts, as rkt gc does).
func unmountBelow(dir string) error {
	return mounts.UnmountBelow(dir, nil)
}
