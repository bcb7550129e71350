//go:build !linux

package testutils

// unmountBelow has nothing to do where rkt cannot run (it is Linux only).
func unmountBelow(dir string) error { return nil }
