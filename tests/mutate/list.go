package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Tiers say where a mutant runs: ci mutants are unit-level and quick (make
// test runs them), unit mutants are unit-level but slower, root mutants
// need root (functional stage1 or rkt tests) and are skipped otherwise.
const (
	TierCI   = "ci"
	TierUnit = "unit"
	TierRoot = "root"
)

// Mutant is one deliberate break of one check.
type Mutant struct {
	Name string
	File string // relative to the repository root
	From string // exact source text, found exactly once in File
	To   string // what it becomes
	Pkg  string // go test package ("./pkg/tarx")
	Run  string // go test -run regexp
	Tier string
	Why  string   // the check, in a line
	Env  []string // extra environment (K=V; {root} is the tree's root)
	// Build runs (sh -c, in the tree) after the mutant is applied and
	// before the test, for tests that drive built binaries.
	Build string
	Line  int // of the "==" header, for messages
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Parse reads a mutant list. The format, one block per mutant:
//
//	== name
//	file: path/to/file.go
//	test: ./package TestRegexp
//	tier: ci|unit|root
//	why: the check this mutant removes
//	env: K=V            (optional, repeatable)
//	build: make all     (optional)
//	--- replace
//	exact source lines
//	--- with
//	replacement lines (may be none)
//	--- end
//
// Lines starting with # outside the snippets are comments.
func Parse(r io.Reader) ([]*Mutant, error) {
	var (
		out  []*Mutant
		cur  *Mutant
		mode string // "", "replace", "with"
		buf  []string
		n    int
	)
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		if mode != "" {
			switch line {
			case "--- with":
				if mode != "replace" {
					return nil, fmt.Errorf("line %d: \"--- with\" outside a replace block", n)
				}
				cur.From, buf, mode = strings.Join(buf, "\n"), nil, "with"
			case "--- end":
				if mode != "with" {
					return nil, fmt.Errorf("line %d: \"--- end\" before \"--- with\"", n)
				}
				cur.To, buf, mode = strings.Join(buf, "\n"), nil, ""
				if err := cur.check(); err != nil {
					return nil, err
				}
				out = append(out, cur)
				cur = nil
			default:
				buf = append(buf, line)
			}
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if name, ok := strings.CutPrefix(t, "== "); ok {
			if cur != nil {
				return nil, fmt.Errorf("line %d: mutant %s has no \"--- replace\" block", cur.Line, cur.Name)
			}
			name = strings.TrimSpace(name)
			if !nameRe.MatchString(name) {
				return nil, fmt.Errorf("line %d: bad mutant name %q (lower case, digits, dashes)", n, name)
			}
			if seen[name] {
				return nil, fmt.Errorf("line %d: mutant %s listed twice", n, name)
			}
			seen[name] = true
			cur = &Mutant{Name: name, Line: n}
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %q outside a mutant (start one with \"== name\")", n, t)
		}
		if t == "--- replace" {
			mode = "replace"
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want \"key: value\", got %q", n, t)
		}
		v = strings.TrimSpace(v)
		switch k {
		case "file":
			cur.File = v
		case "test":
			f := strings.Fields(v)
			if len(f) != 2 {
				return nil, fmt.Errorf("line %d: test: want \"./package TestRegexp\", got %q", n, v)
			}
			cur.Pkg, cur.Run = f[0], f[1]
		case "tier":
			cur.Tier = v
		case "why":
			cur.Why = v
		case "env":
			cur.Env = append(cur.Env, v)
		case "build":
			cur.Build = v
		default:
			return nil, fmt.Errorf("line %d: unknown key %q", n, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if mode != "" || cur != nil {
		return nil, fmt.Errorf("end of list inside mutant %s", cur.Name)
	}
	return out, nil
}

func (m *Mutant) check() error {
	where := fmt.Sprintf("mutant %s (line %d)", m.Name, m.Line)
	switch {
	case m.File == "" || filepath.IsAbs(m.File) || strings.Contains(m.File, ".."):
		return fmt.Errorf("%s: want file: a path inside the repository", where)
	case m.Pkg == "" || !strings.HasPrefix(m.Pkg, "./"):
		return fmt.Errorf("%s: want test: ./package TestRegexp", where)
	case m.Tier != TierCI && m.Tier != TierUnit && m.Tier != TierRoot:
		return fmt.Errorf("%s: tier %q, want ci, unit or root", where, m.Tier)
	case m.Why == "":
		return fmt.Errorf("%s: say which check it removes (why:)", where)
	case strings.TrimSpace(m.From) == "":
		return fmt.Errorf("%s: empty replace block", where)
	case m.From == m.To:
		return fmt.Errorf("%s: the replacement is the original", where)
	}
	if _, err := regexp.Compile(m.Run); err != nil {
		return fmt.Errorf("%s: test regexp: %w", where, err)
	}
	return nil
}

// Apply returns src with the mutant applied. The snippet must occur
// exactly once, so that a list entry stops working loudly when the code
// it breaks is changed.
func (m *Mutant) Apply(src string) (string, error) {
	switch c := strings.Count(src, m.From); c {
	case 1:
		return strings.Replace(src, m.From, m.To, 1), nil
	case 0:
		return "", fmt.Errorf("mutant %s: its snippet is no longer in %s: update tests/mutants.txt for the changed code", m.Name, m.File)
	default:
		return "", fmt.Errorf("mutant %s: its snippet occurs %d times in %s: make it longer so it names one place", m.Name, c, m.File)
	}
}

// CheckAll applies every mutant to the files under root (in memory).
func CheckAll(root string, ms []*Mutant) error {
	var errs []string
	for _, m := range ms {
		b, err := os.ReadFile(filepath.Join(root, m.File))
		if err == nil {
			_, err = m.Apply(string(b))
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}
