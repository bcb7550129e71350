package fetch

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
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
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		// No background spinner goroutine for unknown sizes: the bar is
		// redrawn as bytes arrive.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	if start > 0 {
		_ = bar.Set64(start)
	}
	return &bar64{bar: bar, w: f}
}

type quiet struct{}

func (quiet) Write(p []byte) (int, error) { return len(p), nil }
func (quiet) done(bool)                   {}

type bar64 struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

// Write counts bytes; display errors never fail the download.
func (b *bar64) Write(p []byte) (int, error) {
	_ = b.bar.Add64(int64(len(p)))
	return len(p), nil
}

func (b *bar64) done(ok bool) {
	if ok {
		_ = b.bar.Finish()
	}
	fmt.Fprintln(b.w)
}
