package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func TestInteractive(t *testing.T) {
	p := newPod(t, app("a", "--check-tty", "--read-stdin"))
	master, slave := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := p.Command(ctx, "init", "--net=host", "--interactive", p.UUID)
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if _, err := master.WriteString("typed line\n"); err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(master) // EIO once every slave side is closed
		out <- string(b)
	}()
	if err := c.Wait(); err != nil {
		t.Errorf("pod: %v", err)
	}
	var got string
	select {
	case got = <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("no output from the terminal")
	}
	for _, s := range []string{"stdin tty: true", "stdout tty: true", "stdin: typed line"} {
		if !strings.Contains(strings.ReplaceAll(got, "\r", ""), s) {
			t.Errorf("no %q in %q", s, got)
		}
	}
}
