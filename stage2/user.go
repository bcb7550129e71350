package stage2

import (
	"io"

	"github.com/rkt/rkt/pkg/ident"
)

// Identity is the resolved user of an app (see pkg/ident).
type Identity = ident.Identity

// ErrUserNotFound is returned when a user or group name is not in the
// image's /etc/passwd or /etc/group.
var ErrUserNotFound = ident.ErrUserNotFound

// ResolveIdentity resolves user and group in the root the caller is in
// (the app's root, after pivot_root).
func ResolveIdentity(user, group string) (Identity, error) {
	return ident.ResolveIn("/", user, group)
}

// ResolveIdentityIn resolves user and group against the passwd and group
// files of the root directory root (symlinks resolved inside it).
func ResolveIdentityIn(root, user, group string) (Identity, error) {
	return ident.ResolveIn(root, user, group)
}

func resolveIdentity(user, group string, passwd, groups io.Reader, owner func(string) (int, int, error)) (Identity, error) {
	return ident.Resolve(user, group, passwd, groups, owner)
}
