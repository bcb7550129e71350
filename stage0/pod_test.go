package stage0

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rkt/rkt/pkg/lock"
	"github.com/rkt/rkt/pkg/pod"
)

// requireNoPodDirs fails the test if any phase directory below podsDir
// holds something.
func requireNoPodDirs(t *testing.T, podsDir string) {
	t.Helper()
	for _, ph := range pod.Phases {
		ents, err := os.ReadDir(filepath.Join(podsDir, string(ph)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("pod directory left behind: pods/%s/%s", ph, e.Name())
		}
	}
}

// TestCreateAbortsOnFailure injects failures after pod.Create, as a
// cancelled tree-lock wait, a full disk or a bad manifest give: the
// error comes back as is, and no pod directory nor lock stays behind.
func TestCreateAbortsOnFailure(t *testing.T) {
	for name, fail := range map[string]error{
		"cancelled": context.Canceled,
		"full disk": &os.PathError{Op: "write", Path: "pod", Err: syscall.ENOSPC},
		"other":     errors.New("bad manifest"),
	} {
		t.Run(name, func(t *testing.T) {
			podsDir := filepath.Join(t.TempDir(), "pods")
			treeLock, err := lock.Create(filepath.Join(t.TempDir(), "tree.lock"))
			if err != nil {
				t.Fatal(err)
			}
			pr := &Prepared{}
			var podDir string
			err = pr.create(podsDir, func() error {
				podDir = pr.Pod.Path()
				if err := treeLock.TryShared(); err != nil {
					return err
				}
				pr.TreeLocks = append(pr.TreeLocks, treeLock)
				if err := os.WriteFile(filepath.Join(podDir, "pod"), []byte("{}"), 0o640); err != nil {
					return err
				}
				return fail
			})
			if !errors.Is(err, fail) {
				t.Fatalf("create: err = %v, want %v", err, fail)
			}
			requireNoPodDirs(t, podsDir)
			if len(pr.TreeLocks) != 0 {
				t.Errorf("tree locks still held: %d", len(pr.TreeLocks))
			}
			// The pod lock is released: a fresh lock on the same path can
			// be taken only if no directory is there, and the tree lock
			// is closed (taking it exclusively succeeds).
			other, err := lock.Open(treeLock.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.TryExclusive(); err != nil {
				t.Errorf("tree lock not released: %v", err)
			}
		})
	}
}

// TestCreateKeepsPodOnSuccess: a fill that succeeds leaves one locked
// pod in prepare/.
func TestCreateKeepsPodOnSuccess(t *testing.T) {
	podsDir := filepath.Join(t.TempDir(), "pods")
	pr := &Prepared{}
	if err := pr.create(podsDir, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	defer pr.Abort()
	pods, err := pod.List(podsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].State() != pod.StatePreparing {
		t.Fatalf("pods after create: %+v", pods)
	}
	if err := pr.Abort(); err != nil {
		t.Fatal(err)
	}
	requireNoPodDirs(t, podsDir)
}

// TestAbortTwice: Abort of an aborted pod does nothing more (the CLI may
// abort after a failed --uuid-file-save).
func TestAbortTwice(t *testing.T) {
	podsDir := filepath.Join(t.TempDir(), "pods")
	pr := &Prepared{}
	if err := pr.create(podsDir, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	pr.Abort()
	pr.Abort()
	requireNoPodDirs(t, podsDir)
}
