package networking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ensureMasq makes sure the shared rule r exists: under an exclusive
// flock of lockDir's masqLockFile (so that concurrent pods do not add it
// twice), one run checks for it, and a second adds it if it is missing.
// It reports whether it added the rule.
func ensureMasq(ctx context.Context, lockDir string, r masqRule) (bool, error) {
	if lockDir == "" {
		lockDir = os.TempDir()
	}
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return false, fmt.Errorf("set up %s: %w", r, err)
	}
	lock := filepath.Join(lockDir, masqLockFile)
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, fmt.Errorf("set up %s: open its lock: %w", r, err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("set up %s: lock %s: %w", r, lock, err)
	}
	present, err := masqPresent(ctx, r)
	if err != nil || present {
		return false, err
	}
	if err := masqAdd(ctx, r); err != nil {
		return false, err
	}
	return true, nil
}

// masqPresent checks for the rule with one run of iptables or nft.
func masqPresent(ctx context.Context, r masqRule) (bool, error) {
	switch r.backend {
	case "iptables":
		err := run(ctx, nil, r.iptablesCmd(), r.iptablesArgs("-C")...)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			// The rule (or the nat table) is not there.
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("check for the %s: %w", r, err)
		}
		return true, nil
	case "nftables":
		out, err := exec.CommandContext(ctx, "nft", "list", "chain", "inet", masqTable, masqChain).Output()
		if err != nil {
			// No such table or chain yet (a real failure shows when the
			// rule is added).
			return false, nil
		}
		return bytes.Contains(out, []byte(r.nftComment())), nil
	}
	return false, fmt.Errorf("set up %s: unknown firewall backend %q: %w", r, r.backend, ErrConfig)
}

// masqAdd appends the rule to the nat table's POSTROUTING chain (iptables)
// or to rkt's own nat chain (nftables).
func masqAdd(ctx context.Context, r masqRule) error {
	var err error
	if r.backend == "nftables" {
		err = run(ctx, strings.NewReader(r.nftScript()), "nft", "-f", "-")
	} else {
		err = run(ctx, nil, r.iptablesCmd(), r.iptablesArgs("-A")...)
	}
	if err != nil {
		return fmt.Errorf("add the %s: %w: check that the host's %s works (kernel modules nf_nat, xt_iprange, xt_comment)", r, err, r.backend)
	}
	return nil
}

// run runs a firewall command, with its stderr in the error.
func run(ctx context.Context, stdin *strings.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", name, err, msg)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
