package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// runCLI runs the whole CLI (as main does) and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	// Flags keep their values between executions: reset them.
	if c, _, err := cmdRkt.Find(args); err == nil {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags(), cmdRkt.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if f.Changed {
					f.Value.Set(f.DefValue)
					f.Changed = false
				}
			})
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestRunHelpDescribesAppFlags: rkt run --help says what each app flag
// does, not only its name.
func TestRunHelpDescribesAppFlags(t *testing.T) {
	_, out, _ := runCLI(t, "run", "--help")
	for _, want := range []string{"App flags", "--memory string", "memory limit", "--cpu string", "CPU limit", "--user string", "--seccomp string", "Examples:"} {
		if !strings.Contains(out, want) {
			t.Errorf("rkt run --help does not show %q:\n%s", want, out)
		}
	}
}

// TestAppSeparator: "---" ends an app with or without arguments; in the
// wrong place it is explained, not reported as "bad flag syntax".
func TestAppSeparator(t *testing.T) {
	apps, err := parseApps([]string{"example.com/a", "--name=a", "---", "example.com/b"}, newPodFlags("new"), true)
	if err != nil || len(apps) != 2 || apps[0].Name != "a" || apps[1].Image != "example.com/b" || apps[0].Args != nil {
		t.Fatalf("parseApps(a --name=a --- b) = %+v, %v; want two apps", apps, err)
	}
	if _, err := parseApps([]string{"---", "example.com/a"}, newPodFlags("new"), true); err == nil || !strings.Contains(err.Error(), "separates apps") {
		t.Errorf("parseApps(--- a): %v; want an explanation of ---", err)
	}
	code, _, stderr := runCLI(t, "run", "---", "example.com/a")
	if code != 254 || strings.Contains(stderr, "bad flag syntax") || !strings.Contains(stderr, "separates apps") {
		t.Errorf("rkt run --- IMAGE: exit %d, stderr %q; want 254 and an explanation of ---", code, stderr)
	}
}

// TestTypoAppFlag: a misspelt app flag names the flag meant and does not
// print the pod flags' usage.
func TestTypoAppFlag(t *testing.T) {
	_, err := parseApps([]string{"example.com/a", "--memroy=1G"}, newPodFlags("new"), true)
	if err == nil || !strings.Contains(err.Error(), "did you mean --memory?") {
		t.Errorf("parseApps with --memroy: %v; want a suggestion of --memory", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("rkt run checks for root before it parses the apps")
	}
	saved := globalFlags
	t.Cleanup(func() { globalFlags = saved })
	code, _, stderr := runCLI(t, "--dir="+t.TempDir(), "run", "example.com/a", "--memroy=1G")
	if code != 254 || !strings.Contains(stderr, "did you mean --memory?") {
		t.Errorf("rkt run IMAGE --memroy=1G: exit %d, stderr %q", code, stderr)
	}
	if n := strings.Count(stderr, "\n"); n > 3 || strings.Contains(stderr, "--dns") {
		t.Errorf("rkt run IMAGE --memroy=1G printed %d lines (pod flags' usage?):\n%s", n, stderr)
	}
}
