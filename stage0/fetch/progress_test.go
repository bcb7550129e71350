package fetch

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestProgressLineFits: at every terminal width the line is shorter than
// the terminal (a line that wraps scrolls at every redraw), and wide
// terminals get the whole line.
func TestProgressLineFits(t *testing.T) {
	label := "example.com/some-rather-long-image-name:1.0.0"
	for cols := 1; cols <= 200; cols++ {
		for _, total := range []int64{-1, 2 << 30} {
			line := progressLine(label, 1<<30, total, 12.5e6, cols)
			if n := utf8.RuneCountInString(line); n >= cols && cols > 1 {
				t.Errorf("cols %d, total %d: line %q is %d columns", cols, total, line, n)
			}
		}
	}
	line := progressLine(label, 1<<30, 2<<30, 12.5e6, 120)
	for _, want := range []string{label, " 50%", "[", "1.1 GB/2.1 GB", "12.5 MB/s"} {
		if !strings.Contains(line, want) {
			t.Errorf("line at 120 columns %q lacks %q", line, want)
		}
	}
	if line := progressLine("é"+strings.Repeat("é", 40), 10, 100, 0, 30); !utf8.ValidString(line) {
		t.Errorf("shortened line %q cuts a character", line)
	}
}

// TestProgressRateAfterResume: a resumed download's rate counts only the
// bytes fetched now, not those it already had.
func TestProgressRateAfterResume(t *testing.T) {
	clock := time.Unix(1000, 0)
	now := func() time.Time { return clock }
	var out bytes.Buffer
	b := newBar(&out, "app", 2<<30, 1<<30, now, func() int { return 100 })
	for i := 0; i < 10; i++ {
		clock = clock.Add(200 * time.Millisecond)
		b.Write(make([]byte, 200_000)) // 1 MB/s
	}
	b.done(true)
	frames := strings.Split(out.String(), "\r")
	last := frames[len(frames)-1]
	if !strings.Contains(last, "1.0 MB/s") {
		t.Errorf("rate after resuming at 1 GiB, fetching 1 MB/s: %q", last)
	}
	for _, f := range frames {
		if strings.Contains(f, "GB/s") || strings.Contains(f, "TB/s") {
			t.Errorf("absurd rate in %q", f)
		}
	}
}
