package main

import "testing"

// TestNoNewPrivsWithoutSeccomp: a non-root app gets no_new_privs for its
// own sake, not only because loading the seccomp filter needs it: with
// the filter off, the flag is still set.
func TestNoNewPrivsWithoutSeccomp(t *testing.T) {
	u := app("user", "--print-no-new-privs")
	u.User = "1000"
	r := runApp(t, u, "--disable-seccomp")
	want(t, r.Stdout, "no_new_privs", "1")
	r = runApp(t, app("root", "--print-no-new-privs"), "--disable-seccomp")
	want(t, r.Stdout, "no_new_privs", "0")
}
