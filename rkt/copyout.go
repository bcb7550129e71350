package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rkt/rkt/pkg/fsutil"
)

// copyOut copies a store tree (rootfs/ and manifest) to dir, through a
// temporary sibling renamed into place so that a failure leaves no half
// copy.
func copyOut(tree, dir string, rootfsOnly, overwrite bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if abs == "/" {
		return fmt.Errorf("refusing to write an image over /")
	}
	if _, err := os.Lstat(abs); err == nil && !overwrite {
		return fmt.Errorf("%s already exists: pass --overwrite to replace it", dir)
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".rkt-tmp")
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if rootfsOnly {
		err = fsutil.CopyTree(filepath.Join(tree, "rootfs"), tmp)
	} else {
		if err = os.Mkdir(tmp, 0o755); err == nil {
			err = fsutil.CopyTree(filepath.Join(tree, "rootfs"), filepath.Join(tmp, "rootfs"))
		}
		if err == nil {
			var m []byte
			if m, err = os.ReadFile(filepath.Join(tree, "manifest")); err == nil {
				err = os.WriteFile(filepath.Join(tmp, "manifest"), m, 0o644)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("copying image to %s: %w", dir, err)
	}
	if overwrite {
		if err := os.RemoveAll(abs); err != nil {
			return err
		}
	}
	return os.Rename(tmp, abs)
}
