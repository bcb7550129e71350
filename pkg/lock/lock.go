// Package lock provides flock(2)-based file and directory locks. They are
// the only coordination between concurrent rkt processes: there is no
// daemon. A lock is released when its file descriptor is closed, so a
// process killed with SIGKILL never leaves a lock behind.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by the non-blocking Try* functions when another
// process holds a conflicting lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held (or not yet taken) flock on a file or directory.
type Lock struct {
	f    *os.File
	path string
}

// Open opens path (a directory or an existing file) for locking.
func Open(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &Lock{f: f, path: path}, nil
}

// Create opens path for locking, creating an empty file if needed.
func Create(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, err
	}
	return &Lock{f: f, path: path}, nil
}

// Path returns the locked path.
func (l *Lock) Path() string { return l.path }

// Fd returns the descriptor holding the lock (for handing it to stage1).
func (l *Lock) Fd() uintptr { return l.f.Fd() }

// File returns the underlying file.
func (l *Lock) File() *os.File { return l.f }

func (l *Lock) flock(how int) error {
	for {
		err := unix.Flock(int(l.f.Fd()), how)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EWOULDBLOCK {
			return fmt.Errorf("%s: %w", l.path, ErrLocked)
		}
		if err != nil {
			return &os.PathError{Op: "flock", Path: l.path, Err: err}
		}
		return nil
	}
}

// TryExclusive takes an exclusive lock or fails at once with ErrLocked.
func (l *Lock) TryExclusive() error { return l.flock(unix.LOCK_EX | unix.LOCK_NB) }

// TryShared takes a shared lock or fails at once with ErrLocked.
func (l *Lock) TryShared() error { return l.flock(unix.LOCK_SH | unix.LOCK_NB) }

// Exclusive waits for an exclusive lock until ctx is done.
func (l *Lock) Exclusive(ctx context.Context) error { return l.wait(ctx, unix.LOCK_EX) }

// Shared waits for a shared lock until ctx is done.
func (l *Lock) Shared(ctx context.Context) error { return l.wait(ctx, unix.LOCK_SH) }

// wait (not for converting a lock l already holds) tries without blocking
// first (the common, uncontended case costs
// one syscall), then blocks in flock on a goroutine so that ctx can end
// the wait. The blocking flock runs on a new open file description of the
// same file (reopened through /proc/self/fd, so renames do not matter):
// if ctx ends first, a lock granted late belongs to that description alone
// and is dropped by closing it, without touching l's own.
func (l *Lock) wait(ctx context.Context, how int) error {
	if err := l.flock(how | unix.LOCK_NB); !errors.Is(err, ErrLocked) {
		return err
	}
	nf, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", l.f.Fd()))
	if err != nil {
		return &os.PathError{Op: "reopen", Path: l.path, Err: err}
	}
	done := make(chan error, 1)
	go func() {
		for {
			err := unix.Flock(int(nf.Fd()), how)
			if err == unix.EINTR {
				continue
			}
			done <- err
			return
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			nf.Close()
			return &os.PathError{Op: "flock", Path: l.path, Err: err}
		}
		l.f.Close() // the lock now lives on nf
		l.f = nf
		return nil
	case <-ctx.Done():
		go func() {
			<-done
			nf.Close() // releases a late grant, if any
		}()
		return fmt.Errorf("waiting for lock on %s: %w", l.path, ctx.Err())
	}
}

// Unlock releases the lock but keeps the descriptor open.
func (l *Lock) Unlock() error { return l.flock(unix.LOCK_UN) }

// Close releases the lock and closes the descriptor.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// KeyLock locks a key (an image ID, a tree ID) through a lock file named
// after it in dir. The files are never removed: removing a lock file that
// another process has open would let two processes "hold" the same key.
func KeyLock(ctx context.Context, dir, key string, exclusive bool) (*Lock, error) {
	if key == "" || key != filepath.Base(key) || key == "." || key == ".." {
		return nil, fmt.Errorf("invalid lock key %q", key)
	}
	l, err := Create(filepath.Join(dir, key))
	if err != nil {
		return nil, err
	}
	if exclusive {
		err = l.Exclusive(ctx)
	} else {
		err = l.Shared(ctx)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
