package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarkdownLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"default rkt-<uuid>":      `default rkt-\<uuid\>`,
		"IP=HOST[,HOST...] (rep)": `IP=HOST\[,HOST...\] (rep)`,
		"a_b *c* `d` \\":          "a\\_b \\*c\\* \\`d\\` \\\\",
		"    --x [y]":             "    --x [y]", // a code block stays
	} {
		if got := markdownLiteral(in); got != want {
			t.Errorf("markdownLiteral(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRoffHyphens(t *testing.T) {
	in := ".SH NAME\nrkt\\-run \\fB--net\\fP=x\n.TP\n"
	want := ".SH NAME\nrkt\\-run \\fB\\-\\-net\\fP=x\n.TP\n"
	if got := roffHyphens(in); got != want {
		t.Errorf("roffHyphens(%q) = %q, want %q", in, got, want)
	}
}

// TestManPagesRender checks the committed man pages (make man; make
// check-man keeps them those the generator writes): text with <...> and
// [...](...) survives, flags are typed with minus signs, and the main
// commands have examples.
func TestManPagesRender(t *testing.T) {
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("..", "dist", "man", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	run := read("rkt-run.1")
	for _, want := range []string{`rkt\-<uuid>`, `IP=HOST[,HOST...] (repeatable)`, `\fB\-\-hostname\fP`, `\-\-memory string`, "memory limit"} {
		if !strings.Contains(run, want) {
			t.Errorf("rkt-run.1 does not contain %q", want)
		}
	}
	if strings.Contains(run, `\[la]`) {
		t.Error("rkt-run.1 renders text as a link (\\[la]...\\[ra])")
	}
	for _, page := range []string{"rkt-run.1", "rkt-prepare.1", "rkt-fetch.1", "rkt-status.1", "rkt-gc.1", "rkt-rm.1", "rkt-trust.1"} {
		if !strings.Contains(read(page), ".SH EXAMPLE") {
			t.Errorf("%s has no examples", page)
		}
	}
}
