package stage1abi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeaf: the contract imports nothing of rkt's and nothing but
// path/filepath directly, so that every side can import it.
func TestLeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "path/filepath" {
		t.Errorf("pkg/stage1abi imports %q, want only path/filepath", got)
	}
}
