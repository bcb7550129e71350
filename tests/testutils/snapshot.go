package testutils

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// SnapshotTree describes every path below dir: its type, and its size for
// a regular file. Paths below skipDir (relative to dir: lock files, never
// removed by design) are left out, and so is the size of the file at
// sizeless (a database whose size says nothing of its content). Compare
// two snapshots with DiffSnapshots.
func SnapshotTree(t testing.TB, dir, skipDir, sizeless string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if skipDir != "" && strings.HasPrefix(rel, skipDir+"/") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().Type().String()
		if fi.Mode().IsRegular() && rel != sizeless {
			desc += fmt.Sprintf(" %d bytes", fi.Size())
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

// DiffSnapshots lists what differs between two SnapshotTree results,
// sorted: "added P (desc)", "changed P: old -> new", "removed P".
func DiffSnapshots(before, after map[string]string) []string {
	var d []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			d = append(d, "added "+p+" ("+v+")")
		} else if w != v {
			d = append(d, "changed "+p+": "+w+" -> "+v)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		}
	}
	sort.Strings(d)
	return d
}
