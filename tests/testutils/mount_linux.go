package testutils

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// unescapeMountPath undoes mountinfo's octal escapes (\040 is a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v, ok := byte(0), true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseMountPoints returns the mount points (field 5) of a mountinfo table,
// in table order.
func parseMountPoints(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMountPath(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	return out, nil
}

// mountsBelow returns the mount points at or below dir, in the order they
// must be unmounted: deepest path first, and the most recent mount first
// among mounts stacked on one path.
func mountsBelow(points []string, dir string) []string {
	type m struct {
		path  string
		order int
	}
	var sel []m
	for i, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			sel = append(sel, m{p, i})
		}
	}
	sort.SliceStable(sel, func(i, j int) bool {
		di, dj := strings.Count(sel[i].path, "/"), strings.Count(sel[j].path, "/")
		if di != dj {
			return di > dj
		}
		if sel[i].path != sel[j].path {
			return sel[i].path > sel[j].path
		}
		return sel[i].order > sel[j].order
	})
	out := make([]string, len(sel))
	for i, s := range sel {
		out[i] = s.path
	}
	return out
}

func readMountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return parseMountPoints(f)
}

// unmountBelow lazily (MNT_DETACH) unmounts everything mounted at or below
// dir, deepest first, until nothing is left; a few passes cover mounts that
// propagation brings back.
func unmountBelow(dir string) error {
	var lastErr error
	for pass := 0; pass < 5; pass++ {
		points, err := readMountPoints()
		if err != nil {
			return err
		}
		todo := mountsBelow(points, dir)
		if len(todo) == 0 {
			return nil
		}
		for _, p := range todo {
			err := unix.Unmount(p, unix.MNT_DETACH)
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				lastErr = &os.PathError{Op: "unmount", Path: p, Err: err}
			}
		}
	}
	if lastErr == nil {
		lastErr = errors.New("mounts keep reappearing")
	}
	return fmt.Errorf("unmount everything below %s: %w", dir, lastErr)
}
