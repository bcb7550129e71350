package fsutil

import (
	"strings"

	"golang.org/x/sys/unix"
)

// ImageXattr reports whether an extended attribute may be carried by an
// image: user.*, file capabilities and POSIX ACLs. trusted.* (overlayfs
// reads trusted.overlay.* from lower layers) and security labels are not.
func ImageXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "security.capability" ||
		name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// ImageXattrs returns the attributes of p (not following a symlink) that
// an image may carry, or nil.
func ImageXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if err == unix.ENOTSUP {
			err = nil
		}
		return nil, err
	}
	names := make([]byte, sz)
	if sz, err = unix.Llistxattr(p, names); err != nil {
		return nil, err
	}
	var out map[string]string
	for _, k := range strings.Split(strings.TrimRight(string(names[:sz]), "\x00"), "\x00") {
		if !ImageXattr(k) {
			continue
		}
		vsz, err := unix.Lgetxattr(p, k, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vsz)
		if vsz, err = unix.Lgetxattr(p, k, v); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = string(v[:vsz])
	}
	return out, nil
}
