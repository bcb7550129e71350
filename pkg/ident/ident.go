// Package ident resolves an app's user and group (numbers, names from the
// image's /etc/passwd and /etc/group, or the owner of a path in the image)
// to numeric IDs: stage0 does it before a pod exists, so that a missing user
// fails early, and stage2 again inside the app's root.
package ident

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// ErrUserNotFound is returned when a user or group name is not in the
// image's /etc/passwd or /etc/group.
var ErrUserNotFound = errors.New("not found")

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

// colonLines calls fn with the colon-separated fields of each line of r
// that has at least min fields, skipping blank lines and comments.
func colonLines(r io.Reader, min int, fn func(f []string)) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= min {
			fn(f)
		}
	}
	return sc.Err()
}

// parsePasswd reads /etc/passwd lines: name:password:uid:gid:gecos:home:shell.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := colonLines(r, 4, func(f []string) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name string
	gid  int
}

// parseGroup reads /etc/group lines: name:password:gid:members.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := colonLines(r, 3, func(f []string) {
		if gid, err := strconv.Atoi(f[2]); err == nil {
			out = append(out, groupEntry{name: f[0], gid: gid})
		}
	})
	return out, err
}

// Identity is the resolved user of an app.
type Identity struct {
	UID, GID int
	// Home is the user's home from /etc/passwd ("" if the user was given
	// as a number that passwd does not list).
	Home string
	// Name is the user name from /etc/passwd, if any.
	Name string
}

// Resolve resolves appc user and group strings against the
// image's passwd and group files (already opened; either may be nil if the
// file does not exist). A number is taken as is; a name must be listed; an
// absolute path means the owner of that file in the image. The group
// defaults to the user's primary group when empty.
func Resolve(user, group string, passwd, groups io.Reader, owner func(path string) (uid, gid int, err error)) (Identity, error) {
	var id Identity
	var pw []passwdEntry
	if passwd != nil {
		var err error
		if pw, err = parsePasswd(passwd); err != nil {
			return id, fmt.Errorf("read image's /etc/passwd: %w", err)
		}
	}
	if user == "" {
		user = "0"
	}
	switch {
	case isNumber(user):
		id.UID, _ = strconv.Atoi(user)
		id.GID = id.UID
		for _, e := range pw {
			if e.uid == id.UID {
				id.GID, id.Home, id.Name = e.gid, e.home, e.name
				break
			}
		}
	case strings.HasPrefix(user, "/"):
		uid, gid, err := owner(user)
		if err != nil {
			return id, fmt.Errorf("user from the owner of %s: %w", user, err)
		}
		id.UID, id.GID = uid, gid
	default:
		found := false
		for _, e := range pw {
			if e.name == user {
				id.UID, id.GID, id.Home, id.Name = e.uid, e.gid, e.home, e.name
				found = true
				break
			}
		}
		if !found {
			if passwd == nil {
				return id, fmt.Errorf("user %s %w: the image has no /etc/passwd (give a numeric uid)", user, ErrUserNotFound)
			}
			return id, fmt.Errorf("user %s %w in image's /etc/passwd", user, ErrUserNotFound)
		}
	}
	switch {
	case group == "":
	case isNumber(group):
		id.GID, _ = strconv.Atoi(group)
	case strings.HasPrefix(group, "/"):
		_, gid, err := owner(group)
		if err != nil {
			return id, fmt.Errorf("group from the owner of %s: %w", group, err)
		}
		id.GID = gid
	default:
		if groups == nil {
			return id, fmt.Errorf("group %s %w: the image has no /etc/group (give a numeric gid)", group, ErrUserNotFound)
		}
		gr, err := parseGroup(groups)
		if err != nil {
			return id, fmt.Errorf("read image's /etc/group: %w", err)
		}
		found := false
		for _, e := range gr {
			if e.name == group {
				id.GID, found = e.gid, true
				break
			}
		}
		if !found {
			return id, fmt.Errorf("group %s %w in image's /etc/group", group, ErrUserNotFound)
		}
	}
	return id, nil
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ResolveIn resolves user and group against the passwd and group files of
// the root directory root ("/" for the caller's own root), symlinks
// resolved inside it.
func ResolveIn(root, user, group string) (Identity, error) {
	open := func(p string) (io.Reader, func(), error) {
		full, err := securejoin.SecureJoin(root, p)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(full)
		if errors.Is(err, os.ErrNotExist) {
			return nil, func() {}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	pw, closePW, err := open("/etc/passwd")
	if err != nil {
		return Identity{}, fmt.Errorf("open image's /etc/passwd: %w", err)
	}
	defer closePW()
	gr, closeGR, err := open("/etc/group")
	if err != nil {
		return Identity{}, fmt.Errorf("open image's /etc/group: %w", err)
	}
	defer closeGR()
	owner := func(p string) (int, int, error) {
		full, err := securejoin.SecureJoin(root, p)
		if err != nil {
			return 0, 0, err
		}
		return StatOwner(full)
	}
	return Resolve(user, group, pw, gr, owner)
}

// StatOwner returns the owner of path.
func StatOwner(path string) (int, int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return int(st.Uid), int(st.Gid), nil
}
