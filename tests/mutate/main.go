// Command mutate checks that the tests notice when a security check is
// removed. It reads a curated list of mutants (tests/mutants.txt: a file,
// an exact snippet of a check, what the snippet becomes, and the tests that
// must then fail), applies each one in turn to a copy of the source tree,
// runs its tests there, and reports each mutant as killed (the tests
// failed) or survived. The source tree itself is never modified.
//
// It exits non-zero when a mutant survives, when a snippet no longer
// matches the code (the list must follow the code), when a mutant does not
// compile, or when a test fails before any mutant is applied.
//
// Usage: go run ./tests/mutate [-tier ci|unit|all] [-run REGEXP] [-v] [LIST]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rkt/rkt/pkg/testutil"
)

func main() {
	tier := flag.String("tier", "all", "which mutants: ci (quick, unit-level), unit (all unit-level), all (also root-only ones, when root)")
	run := flag.String("run", "", "only mutants whose name matches this regexp")
	verbose := flag.Bool("v", false, "show the failing test lines of each killed mutant")
	keep := flag.Bool("keep", false, "keep the copy of the tree")
	timeout := flag.Duration("timeout", 10*time.Minute, "per test run")
	flag.Parse()
	list := "tests/mutants.txt"
	if flag.NArg() > 0 {
		list = flag.Arg(0)
	}
	code, err := mainErr(options{list: list, tier: *tier, run: *run, verbose: *verbose, keep: *keep, timeout: *timeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

type options struct {
	list, tier, run string
	verbose, keep   bool
	timeout         time.Duration
}

func mainErr(o options) (int, error) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return 0, fmt.Errorf("not in a git checkout: %w", err)
	}
	src := strings.TrimSpace(string(top))
	listPath := o.list
	if !filepath.IsAbs(listPath) {
		listPath = filepath.Join(src, listPath)
	}
	f, err := os.Open(listPath)
	if err != nil {
		return 0, err
	}
	ms, err := Parse(f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", o.list, err)
	}
	if err := CheckAll(src, ms); err != nil {
		return 0, err
	}
	ms, err = selectMutants(ms, o.tier, o.run)
	if err != nil {
		return 0, err
	}
	tree, err := copyTree(src)
	if err != nil {
		return 0, err
	}
	if !o.keep {
		defer os.RemoveAll(tree)
	} else {
		fmt.Println("tree copy kept in", tree)
	}
	r := &runner{tree: tree, timeout: o.timeout, verbose: o.verbose, baseline: map[string]error{}}
	return r.runAll(ms), nil
}

func selectMutants(ms []*Mutant, tier, run string) ([]*Mutant, error) {
	var re *regexp.Regexp
	if run != "" {
		var err error
		if re, err = regexp.Compile(run); err != nil {
			return nil, err
		}
	}
	var out []*Mutant
	for _, m := range ms {
		switch tier {
		case TierCI:
			if m.Tier != TierCI {
				continue
			}
		case TierUnit:
			if m.Tier == TierRoot {
				continue
			}
		case "all":
		default:
			return nil, fmt.Errorf("-tier %q: want ci, unit or all", tier)
		}
		if re != nil && !re.MatchString(m.Name) {
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no mutant selected")
	}
	return out, nil
}

// copyTree copies the files git knows of (tracked, and new ones not
// ignored) into a fresh directory, so that a mutant never touches the
// source and an interrupted run leaves nothing behind but the copy.
func copyTree(src string) (string, error) {
	out, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return "", fmt.Errorf("git ls-files: %w", err)
	}
	dst, err := os.MkdirTemp("", "rkt-mutate-")
	if err != nil {
		return "", err
	}
	for _, name := range strings.Split(string(out), "\x00") {
		if name == "" {
			continue
		}
		if err := copyFile(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted in the work tree
			}
			os.RemoveAll(dst)
			return "", err
		}
	}
	return dst, nil
}

func copyFile(from, to string) error {
	fi, err := os.Lstat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		t, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(t, to)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

type runner struct {
	tree     string
	timeout  time.Duration
	verbose  bool
	baseline map[string]error // test command -> result without mutants
}

// result of one mutant.
const (
	killed   = "killed"
	survived = "SURVIVED"
	broken   = "BROKEN"
	skipped  = "skipped"
)

func (r *runner) runAll(ms []*Mutant) int {
	counts := map[string]int{}
	start := time.Now()
	r.baselines(ms)
	for _, m := range ms {
		t0 := time.Now()
		res, detail := r.runOne(m)
		counts[res]++
		fmt.Printf("%-8s %-34s %6.1fs  %s\n", res, m.Name, time.Since(t0).Seconds(), m.Why)
		if detail != "" && (res != killed || r.verbose) {
			for _, l := range strings.Split(strings.TrimRight(detail, "\n"), "\n") {
				fmt.Println("         | " + l)
			}
		}
	}
	fmt.Printf("%d mutants: %d killed, %d survived, %d broken, %d skipped (%.0fs)\n",
		len(ms), counts[killed], counts[survived], counts[broken], counts[skipped], time.Since(start).Seconds())
	if counts[survived] > 0 || counts[broken] > 0 {
		fmt.Println("A survivor is a check whose removal no test notices: add a test that asserts the check's outcome (see docs/testing.md).")
		return 1
	}
	return 0
}

// baselineKey names a mutant's test command.
func baselineKey(m *Mutant) string {
	return strings.Join(append([]string{m.Pkg, m.Run, m.Build}, m.Env...), "\x00")
}

// baselines runs, once per package (and build step and environment), all
// the tests the mutants name there, without any mutant. When they pass,
// every mutant's own test command is known to pass; otherwise runOne runs
// each command alone to say which one fails.
func (r *runner) baselines(ms []*Mutant) {
	type group struct {
		m    Mutant
		runs []string
		keys []string
	}
	var order []string
	groups := map[string]*group{}
	for _, m := range ms {
		if m.Tier == TierRoot && os.Geteuid() != 0 {
			continue
		}
		gk := strings.Join(append([]string{m.Pkg, m.Build}, m.Env...), "\x00")
		g := groups[gk]
		if g == nil {
			g = &group{m: *m}
			groups[gk] = g
			order = append(order, gk)
		}
		g.runs = append(g.runs, "(?:"+m.Run+")")
		g.keys = append(g.keys, baselineKey(m))
	}
	for _, gk := range order {
		g := groups[gk]
		g.m.Run = strings.Join(g.runs, "|")
		if _, err := r.test(&g.m); err == nil {
			for _, k := range g.keys {
				r.baseline[k] = nil
			}
		}
	}
}

func (r *runner) runOne(m *Mutant) (string, string) {
	if m.Tier == TierRoot && os.Geteuid() != 0 {
		return skipped, "needs root"
	}
	key := baselineKey(m)
	base, ok := r.baseline[key]
	if !ok {
		_, base = r.test(m)
		r.baseline[key] = base
	}
	if base != nil {
		return broken, "the test fails without the mutant: " + base.Error()
	}
	path := filepath.Join(r.tree, m.File)
	orig, err := os.ReadFile(path)
	if err != nil {
		return broken, err.Error()
	}
	mutated, err := m.Apply(string(orig))
	if err != nil {
		return broken, err.Error()
	}
	if err := os.WriteFile(path, []byte(mutated), 0o644); err != nil {
		return broken, err.Error()
	}
	defer os.WriteFile(path, orig, 0o644)
	if out, err := r.cmd("go", "vet", "./"+filepath.Dir(m.File)).CombinedOutput(); err != nil {
		return broken, "the mutant does not compile (or fails vet):\n" + string(out)
	}
	out, err := r.test(m)
	switch {
	case err == nil:
		return survived, "the tests passed with the check removed"
	case errors.Is(err, errNoTests):
		return broken, err.Error()
	}
	return killed, failLines(out)
}

func (r *runner) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir = r.tree
	return c
}

// errNoTests: a -run regexp that selects nothing runs nothing, which is
// not a kill.
var errNoTests = errors.New("matches no test")

// test runs the mutant's tests (after its build step); nil means they
// passed.
func (r *runner) test(m *Mutant) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	env := os.Environ()
	if m.Tier == TierRoot {
		env = append(env, testutil.RootEnv+"=1") // the root tests' opt-in switch
	}
	for _, e := range m.Env {
		env = append(env, strings.ReplaceAll(e, "{root}", r.tree))
	}
	var out bytes.Buffer
	if m.Build != "" {
		c := exec.CommandContext(ctx, "sh", "-c", m.Build)
		c.Dir, c.Env, c.Stdout, c.Stderr = r.tree, env, &out, &out
		if err := c.Run(); err != nil {
			return out.String(), fmt.Errorf("build %q: %w\n%s", m.Build, err, tail(out.String(), 20))
		}
		out.Reset()
	}
	c := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", m.Run, m.Pkg)
	c.Dir, c.Env, c.Stdout, c.Stderr = r.tree, env, &out, &out
	err := c.Run()
	if ctx.Err() != nil {
		return out.String() + "\n(timed out)", fmt.Errorf("timed out after %s", r.timeout)
	}
	if err == nil && strings.Contains(out.String(), "[no tests to run]") {
		return out.String(), fmt.Errorf("-run %s: %w in %s", m.Run, errNoTests, m.Pkg)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%w\n%s", err, tail(out.String(), 20))
	}
	return out.String(), nil
}

// failLines picks the lines of go test output that say what failed.
func failLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "--- FAIL") || strings.Contains(t, "_test.go:") || strings.HasPrefix(t, "panic:") || t == "(timed out)" {
			if len(t) > 240 {
				t = t[:240] + "..."
			}
			keep = append(keep, t)
		}
	}
	if len(keep) > 12 {
		keep = append(keep[:12], "...")
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
