package lock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestExclusiveAndShared(t *testing.T) {
	dir := t.TempDir()
	a, err := KeyLock(context.Background(), dir, "k", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.TryShared(); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared lock while exclusively held: %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Shared(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Shared(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	a.Close() // the waiter must wake up exactly now
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not wake up when the lock was released")
	}
	c, err := Create(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.TryShared(); err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	if err := c.TryExclusive(); err == nil {
		t.Fatal("exclusive lock granted while another shared lock is held")
	}
}

func TestLateGrantAfterCancelIsReleased(t *testing.T) {
	dir := t.TempDir()
	a, _ := KeyLock(context.Background(), dir, "k", true)
	b, _ := Create(filepath.Join(dir, "k"))
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Exclusive(ctx); err == nil {
		t.Fatal("got the lock while held")
	}
	a.Close()
	// The abandoned waiter may get the lock late; it must let it go.
	deadline := time.Now().Add(5 * time.Second)
	c, _ := Create(filepath.Join(dir, "k"))
	defer c.Close()
	for c.TryExclusive() != nil {
		if time.Now().After(deadline) {
			t.Fatal("a cancelled wait kept the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKeyLockRejectsPaths(t *testing.T) {
	for _, k := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := KeyLock(context.Background(), t.TempDir(), k, true); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}
