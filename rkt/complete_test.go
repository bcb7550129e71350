package main

import (
	"strings"
	"testing"

	"github.com/rkt/rkt/pkg/pod"
)

// TestCompletePodUUIDs: completing a pod command's argument offers the
// pods' UUIDs and no file names.
func TestCompletePodUUIDs(t *testing.T) {
	saved := globalFlags
	t.Cleanup(func() { globalFlags = saved })
	dir := t.TempDir()
	p, err := pod.Create(dir + "/pods")
	if err != nil {
		t.Fatal(err)
	}
	p.Unlock()
	for _, verb := range []string{"status", "cat-manifest", "rm"} {
		_, out, _ := runCLI(t, "--dir="+dir, "__complete", verb, "")
		if !strings.Contains(out, p.UUID) {
			t.Errorf("completing rkt %s: %q does not offer pod %s", verb, out, p.UUID)
		}
		// ":4" is cobra's ShellCompDirectiveNoFileComp.
		if !strings.Contains(out, "\n:4\n") {
			t.Errorf("completing rkt %s: %q would complete file names", verb, out)
		}
	}
	// A stopped pod is not offered to stop.
	_, out, _ := runCLI(t, "--dir="+dir, "__complete", "stop", "")
	if strings.Contains(out, p.UUID) {
		t.Errorf("completing rkt stop offers the pod in state %s: %q", p.State(), out)
	}
}

// TestCompleteImageNames: image commands complete stored names, not
// files (an empty store offers nothing, and still no file names).
func TestCompleteImageNames(t *testing.T) {
	saved := globalFlags
	t.Cleanup(func() { globalFlags = saved })
	dir := t.TempDir()
	for _, verb := range []string{"rm", "cat-manifest", "export"} {
		_, out, _ := runCLI(t, "--dir="+dir, "__complete", "image", verb, "")
		if !strings.Contains(out, "\n:4\n") && !strings.HasPrefix(out, ":4\n") {
			t.Errorf("completing rkt image %s: %q would complete file names", verb, out)
		}
	}
}
