package tests

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// Text an image chose (labels, annotations) is printed escaped: no raw
// control character reaches the terminal, tables keep their rows.

// hostileLabel retitles an xterm, clears the screen and forges a row.
const hostileLabel = "1.0\x1b]0;pwned\x07\x1b[2J\r\nsha512-forged  evil.com/forged:9  1KiB\u009b31m\u202e"

// requireNoControls fails the test if out holds a control or format
// character other than newline and tab.
func requireNoControls(t *testing.T, what, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			t.Errorf("%s prints a raw %U:\n%q", what, r, out)
			return
		}
	}
}

func TestImageListEscapesControlCharacters(t *testing.T) {
	c := newImageCtx(t)
	a := smallACI("example.com/hostile", hostileLabel, "x")
	a.Image.Annotations = map[string]string{"description": "a\x1b[31mred\r\nline"}
	path := writeACI(t, t.TempDir(), "hostile.aci", a)
	fetchOK(t, c, path)
	out := c.MustRun("image", "list")
	requireNoControls(t, "rkt image list", out)
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 2 {
		t.Errorf("rkt image list: want a header and one row, got %d lines:\n%s", n, out)
	}
	if !strings.Contains(out, `1.0\x1b]0;pwned\a\x1b[2J\r\nsha512-forged`) {
		t.Errorf("rkt image list does not show the escaped label:\n%s", out)
	}
	for _, args := range [][]string{{"image", "list", "--format=json"}, {"image", "cat-manifest", "example.com/hostile"}} {
		out := c.MustRun(args...)
		requireNoControls(t, "rkt "+strings.Join(args, " "), out)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("rkt %s: not JSON after escaping: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(out, "pwned") {
			t.Errorf("rkt %s lost the label:\n%s", strings.Join(args, " "), out)
		}
	}
	_, imgs := listImages(t, c)
	if len(imgs) != 1 || imgs[0].Labels["version"] != hostileLabel {
		t.Errorf("the JSON listing does not decode to the label as given: %+v", imgs)
	}
	// Errors that quote what the user typed are escaped too.
	r := c.Run("image", "rm", "no-such\x1b]0;x\x07image")
	requireNoControls(t, "rkt image rm error", r.Stderr)
}
