package fetch

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// progress receives the downloaded bytes as they are written.
type progress interface {
	io.Writer
	// done ends the display; ok says whether the transfer completed.
	done(ok bool)
}

// newProgress returns a progress bar on w when w is a terminal, and a
// progress that shows nothing otherwise. total < 0 means unknown size;
// start is the number of bytes already present (resumed download).
func newProgress(w io.Writer, label string, total, start int64) progress {
	f, ok := w.(*os.File)
	if !ok || f == nil || !term.IsTerminal(int(f.Fd())) {
		return quiet{}
	}
	fd := int(f.Fd())
	return newBar(f, label, total, start, time.Now, func() int {
		if cols, _, err := term.GetSize(fd); err == nil && cols > 0 {
			return cols
		}
		return 80
	})
}

type quiet struct{}

func (quiet) Write(p []byte) (int, error) { return len(p), nil }
func (quiet) done(bool)                   {}

// bar draws one line, redrawn in place (carriage return, erase to the end
// of the line) at most every redrawEvery. The line always fits the
// terminal's current width, so it never wraps (a wrapped line would
// scroll at every redraw). The rate counts only the bytes of this
// transfer, not those a resumed download already had.
type bar struct {
	w            io.Writer
	label        string
	total, start int64
	n            int64 // bytes present, start included
	began, drawn time.Time
	now          func() time.Time
	cols         func() int
}

const redrawEvery = 100 * time.Millisecond

func newBar(w io.Writer, label string, total, start int64, now func() time.Time, cols func() int) *bar {
	b := &bar{w: w, label: label, total: total, start: start, n: start, now: now, cols: cols}
	b.began = now()
	b.draw()
	return b
}

// Write counts bytes; display errors never fail the download.
func (b *bar) Write(p []byte) (int, error) {
	b.n += int64(len(p))
	if b.now().Sub(b.drawn) >= redrawEvery {
		b.draw()
	}
	return len(p), nil
}

func (b *bar) done(ok bool) {
	b.draw()
	fmt.Fprintln(b.w)
}

func (b *bar) draw() {
	b.drawn = b.now()
	fmt.Fprintf(b.w, "\r%s\x1b[K", progressLine(b.label, b.n, b.total, b.rate(), b.cols()))
}

// rate is this transfer's bytes per second, 0 until there is a second's
// worth of measure (a rate over a few milliseconds means nothing).
func (b *bar) rate() float64 {
	el := b.now().Sub(b.began).Seconds()
	if el < 1 {
		return 0
	}
	return float64(b.n-b.start) / el
}

// progressLine renders "label  45% [=====>    ] 12 MB/27 MB 3.4 MB/s" in
// fewer than cols columns: the bar shrinks, then goes; then the label is
// shortened, then the rate dropped, then the line cut.
func progressLine(label string, n, total int64, rate float64, cols int) string {
	max := cols - 1 // the last column would make some terminals wrap
	if max < 1 {
		return ""
	}
	pct := ""
	counts := humanBytes(n)
	if total > 0 {
		pct = fmt.Sprintf("%3d%%", min(100, n*100/total))
		counts += "/" + humanBytes(total)
	}
	rateStr := ""
	if rate > 0 {
		rateStr = humanBytes(int64(rate)) + "/s"
	}
	join := func(parts ...string) string {
		var nonEmpty []string
		for _, p := range parts {
			if p != "" {
				nonEmpty = append(nonEmpty, p)
			}
		}
		return strings.Join(nonEmpty, " ")
	}
	graphic := func(w int) string {
		if total <= 0 || w < 7 {
			return ""
		}
		inner := w - 2
		fill := int(int64(inner) * min(n, total) / total)
		s := strings.Repeat("=", fill)
		if fill < inner {
			s += ">" + strings.Repeat(" ", inner-fill-1)
		}
		return "[" + s + "]"
	}
	rest := join(pct, counts, rateStr)
	if room := max - len(label) - len(rest) - 2; room >= 7 {
		return join(label, pct, graphic(min(room, 32)), counts, rateStr)
	}
	for _, tail := range []string{rest, join(pct, counts), pct} {
		if room := max - len(tail) - 1; room >= 8 {
			return join(shorten(label, room), tail)
		}
	}
	return shorten(join(label, rest), max)
}

// shorten cuts s to at most w bytes, marking the cut with "...".
func shorten(s string, w int) string {
	if len(s) <= w {
		return s
	}
	cut := w - 3
	if w <= 3 {
		cut = w
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // not inside a character
	}
	if w <= 3 {
		return s[:cut]
	}
	return s[:cut] + "..."
}

// humanBytes prints n in SI units (kB, MB, GB), as download sizes are.
func humanBytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 || u == "TB" {
			if u == "B" || f >= 100 {
				return fmt.Sprintf("%.0f %s", f, u)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1000
	}
	return ""
}
