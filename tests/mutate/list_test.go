package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `# comment
== one
file: a/b.go
test: ./a TestX|TestY
tier: ci
why: the check
--- replace
	if bad {
		return err
	}
--- with
--- end

== two
file: a/b.go
test: ./a TestZ
tier: root
why: another
env: K=V
build: make all
--- replace
x := 1
--- with
x := 2
--- end
`

func TestParse(t *testing.T) {
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("%d mutants, want 2", len(ms))
	}
	one, two := ms[0], ms[1]
	if one.Name != "one" || one.File != "a/b.go" || one.Pkg != "./a" || one.Run != "TestX|TestY" || one.Tier != TierCI ||
		one.From != "\tif bad {\n\t\treturn err\n\t}" || one.To != "" {
		t.Errorf("one = %+v", one)
	}
	if two.To != "x := 2" || two.Build != "make all" || len(two.Env) != 1 || two.Env[0] != "K=V" || two.Tier != TierRoot {
		t.Errorf("two = %+v", two)
	}
}

func TestParseErrors(t *testing.T) {
	block := func(fields, from, to string) string {
		return "== m\n" + fields + "--- replace\n" + from + "\n--- with\n" + to + "--- end\n"
	}
	ok := "file: f.go\ntest: ./p TestA\ntier: ci\nwhy: w\n"
	for _, c := range []struct{ list, want string }{
		{block(ok, "a", "b\n") + block(ok, "a", "b\n"), "listed twice"},
		{block("file: f.go\ntest: ./p TestA\ntier: nightly\nwhy: w\n", "a", ""), "tier"},
		{block("file: f.go\ntest: ./p\ntier: ci\nwhy: w\n", "a", ""), "test:"},
		{block("file: ../f.go\ntest: ./p TestA\ntier: ci\nwhy: w\n", "a", ""), "inside the repository"},
		{block("file: f.go\ntest: ./p TestA\ntier: ci\n", "a", ""), "why:"},
		{block(ok, "a", "a\n"), "is the original"},
		{block(ok, "", "b\n"), "empty replace"},
		{"== m\n" + ok + "--- replace\na\n", "end of list"},
		{"file: f.go\n", "outside a mutant"},
		{"== Bad_Name\n", "bad mutant name"},
		{"== m\nfile f.go\n", "key: value"},
		{"== m\ncolour: red\n", "unknown key"},
	} {
		if _, err := Parse(strings.NewReader(c.list)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want an error saying %q", c.list, err, c.want)
		}
	}
}

func TestApply(t *testing.T) {
	m := &Mutant{Name: "m", File: "f.go", From: "check()", To: "// check()"}
	if got, err := m.Apply("a\ncheck()\nb\n"); err != nil || got != "a\n// check()\nb\n" {
		t.Errorf("Apply = %q, %v", got, err)
	}
	if _, err := m.Apply("a\nb\n"); err == nil || !strings.Contains(err.Error(), "no longer in f.go") {
		t.Errorf("missing snippet: %v", err)
	}
	if _, err := m.Apply("check()\ncheck()\n"); err == nil || !strings.Contains(err.Error(), "2 times") {
		t.Errorf("snippet twice: %v", err)
	}
}

// TestListMatchesTheCode keeps tests/mutants.txt in step with the code
// without running any mutant: every entry parses, and every snippet is
// found exactly once in its file.
func TestListMatchesTheCode(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "tests/mutants.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		t.Fatalf("tests/mutants.txt: %v", err)
	}
	if err := CheckAll(root, ms); err != nil {
		t.Error(err)
	}
	ci := 0
	for _, m := range ms {
		if m.Tier == TierCI {
			ci++
		}
		if _, err := os.Stat(filepath.Join(root, m.Pkg)); err != nil {
			t.Errorf("mutant %s: test package %s: %v", m.Name, m.Pkg, err)
		}
	}
	if ci == 0 {
		t.Error("no ci-tier mutant: make test would check nothing")
	}
}

func TestSelect(t *testing.T) {
	ms := []*Mutant{{Name: "a", Tier: TierCI}, {Name: "b", Tier: TierUnit}, {Name: "c", Tier: TierRoot}}
	for _, c := range []struct {
		tier, run string
		want      string
	}{
		{"ci", "", "a"}, {"unit", "", "ab"}, {"all", "", "abc"}, {"all", "^[bc]$", "bc"},
	} {
		got, err := selectMutants(ms, c.tier, c.run)
		var names string
		for _, m := range got {
			names += m.Name
		}
		if err != nil || names != c.want {
			t.Errorf("select(%s, %q) = %q, %v; want %q", c.tier, c.run, names, err, c.want)
		}
	}
	if _, err := selectMutants(ms, "nightly", ""); err == nil {
		t.Error("unknown tier accepted")
	}
	if _, err := selectMutants(ms, "all", "^zzz$"); err == nil {
		t.Error("an empty selection is not an error")
	}
}
