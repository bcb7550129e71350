//go:build !linux

package fetch

import "os"

// tryLock never locks on platforms without flock support here: every
// download then uses a private file and nothing is resumed.
func tryLock(*os.File) bool { return false }
