package main

import (
	"strings"
	"testing"
)

func TestPrintTableEscapes(t *testing.T) {
	var b strings.Builder
	rows := [][]string{{"sha512-1", "evil:1\x1b]0;pwned\x07\r\nsha512-2\tforged"}}
	if err := printTable(&b, "", false, []string{"ID", "NAME"}, rows, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\r\t") || strings.Count(out, "\n") != 2 {
		t.Errorf("table holds raw control characters or a forged row:\n%q", out)
	}
	if rows[0][1] != "evil:1\x1b]0;pwned\x07\r\nsha512-2\tforged" {
		t.Errorf("printTable changed its caller's rows")
	}
	b.Reset()
	if err := printTable(&b, "json", false, nil, nil, map[string]string{"a": "\u009b31m\u202e"}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\u009b\u202e") || !strings.Contains(b.String(), `\u009b31m\u202e`) {
		t.Errorf("JSON output: %q", b.String())
	}
}
