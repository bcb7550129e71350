// Package testutil is what the tests of every tier share: the one way a
// test says that it needs root.
//
// Tests that need root (namespaces, mounts, cgroups, veths, iptables) call
// RequireRoot. They run only when the opt-in switch RootEnv is set to 1, so
// that `make unit` (which does not set it) runs exactly the tests that need
// no root, even when a developer runs it as root, and says so by skipping
// the others; `make root` and `make functional` set it. With the switch on,
// a test run without root fails instead of skipping, so a root tier that
// ran nothing cannot pass.
package testutil

import (
	"os"
	"testing"
)

// RootEnv is the environment variable that switches the root tests on.
const RootEnv = "RKT_TEST_ROOT"

// RootTests reports whether the root tests are switched on (for a
// TestMain that prepares what they share).
func RootTests() bool { return os.Getenv(RootEnv) == "1" }

// RequireRoot skips the test unless the root tests are switched on, and
// fails it if they are but it does not run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if !RootTests() {
		t.Skipf("needs root: run as root with %s=1 (make root, make functional)", RootEnv)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but the test does not run as root (euid %d)", RootEnv, os.Geteuid())
	}
}
