package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3 * s}, 3 * s},
		{[]time.Duration{5 * s, 1 * s, 3 * s}, 3 * s},
		{[]time.Duration{4 * s, 1 * s, 2 * s, 9 * s}, 3 * s},
	} {
		in := append([]time.Duration(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("median reordered its input")
			}
		}
	}
}

func TestSeriesAndRate(t *testing.T) {
	s := Series{{Wall: 2 * time.Second, Sync: time.Second}, {Wall: 4 * time.Second, Sync: 3 * time.Second}, {Wall: 3 * time.Second}}
	if got := s.Median(false); got != 3*time.Second {
		t.Errorf("median wall %v", got)
	}
	if got := s.Median(true); got != 3*time.Second { // 3, 7, 3
		t.Errorf("median wall+sync %v", got)
	}
	if got := Rate(200e6, 2*time.Second); got != 100 {
		t.Errorf("rate %v, want 100 MB/s", got)
	}
}

func TestReportRatios(t *testing.T) {
	res := []*result{{format: "gzip", size: 1, baselineScript: "base",
		rkt:      Series{{Wall: 4 * time.Second}},
		baseline: Series{{Wall: 2 * time.Second, Sync: 2 * time.Second}}}}
	var out bytes.Buffer
	report(&out, env{}, &config{rounds: 1}, Images{Uncompressed: 200e6}, res)
	got := out.String()
	for _, want := range []string{"ratio 0.50 (baseline as is: BELOW the target)", "ratio 1.00 (baseline + sync)", "50.0", "100.0"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-n", "3", "-formats", "plain"}, &bytes.Buffer{})
	if err != nil || c.rounds != 3 || len(c.formats) != 1 || c.formats[0] != "plain" {
		t.Fatalf("got %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"-formats", "zip"}, {"-n", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRunners drives both contenders on a small image, rkt being a
// script that checks its arguments and prints an ID.
func TestRunners(t *testing.T) {
	dir := t.TempDir()
	im, err := WriteImages(context.Background(), dir, GenOptions{Size: 1e6, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	short := im.ID[:19]
	fake := filepath.Join(dir, "rkt")
	script := "#!/bin/sh\n" +
		`case "$1" in --dir=*) test -d "${1#--dir=}" || exit 3;; *) exit 4;; esac` + "\n" +
		`test "$2 $3" = "--insecure-options=image fetch" || exit 5` + "\n" +
		`test -f "$4" || exit 6` + "\n" +
		`echo "$FAKE_ID"` + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &runner{rkt: fake, work: dir}
	ctx := context.Background()
	t.Setenv("FAKE_ID", short)
	if _, err := r.rktFetch(ctx, im.Gzip, short); err != nil {
		t.Errorf("rkt run: %v", err)
	}
	t.Setenv("FAKE_ID", "sha512-000000000000")
	if _, err := r.rktFetch(ctx, im.Gzip, short); err == nil || !strings.Contains(err.Error(), "import is broken") {
		t.Errorf("a wrong ID was not caught: %v", err)
	}
	for _, c := range []struct {
		file string
		gz   bool
	}{{im.Plain, false}, {im.Gzip, true}} {
		s, err := r.baseline(ctx, c.file, c.gz)
		if err != nil {
			t.Fatalf("baseline on %s: %v", c.file, err)
		}
		if s.Wall <= 0 || s.CPU <= 0 {
			t.Errorf("baseline sample %+v", s)
		}
	}
	if _, err := r.baseline(ctx, filepath.Join(dir, "missing.aci"), false); err == nil {
		t.Error("the baseline on a missing file did not fail")
	}
	// Each run had its own output directory, kept until the end: 2 images,
	// the fake rkt, 2 rkt stores and 3 baseline directories.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 8 {
		t.Errorf("work directory holds %v", ents)
	}
}
