package main

import (
	"strings"
	"testing"
)

// sysMountOptions runs an app that prints the options of its /sys mount
// (from /proc/self/mounts) and returns them.
func sysMountOptions(t *testing.T, args ...string) []string {
	t.Helper()
	sh := stage1testApp("sh", "/bin/sh", "-c",
		`while read dev mp typ opts rest; do [ "$mp" = /sys ] && echo "sysopts=$opts"; done < /proc/self/mounts; true`)
	r := runApp(t, sh, args...)
	var opts []string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "sysopts="); ok {
			opts = strings.Split(v, ",") // the last /sys mount is the visible one
		}
	}
	if opts == nil {
		t.Fatalf("no /sys mount in the app's /proc/self/mounts: %q %q", r.Stdout, r.Stderr)
	}
	return opts
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// TestSysReadOnly checks the flags of the app's /sys mount: read-only by
// default, read-write with --disable-paths. (Writing a new file in /sys
// fails on a writable sysfs too, so a failed write proves nothing.)
func TestSysReadOnly(t *testing.T) {
	if opts := sysMountOptions(t); !hasOpt(opts, "ro") {
		t.Errorf("/sys is mounted %v, want ro", opts)
	} else if !hasOpt(opts, "nosuid") || !hasOpt(opts, "nodev") || !hasOpt(opts, "noexec") {
		t.Errorf("/sys is mounted %v, want nosuid, nodev and noexec", opts)
	}
	if opts := sysMountOptions(t, "--disable-paths"); !hasOpt(opts, "rw") {
		t.Errorf("/sys with --disable-paths is mounted %v, want rw", opts)
	}
}
