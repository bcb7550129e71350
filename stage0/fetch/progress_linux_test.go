package fetch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openPTY returns the controlling and terminal sides of a new pseudo-terminal.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		t.Skipf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		t.Skipf("pseudo-terminal number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	return ptmx, tty
}

func TestProgressOnTerminal(t *testing.T) {
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once tty is closed
		out <- b
	}()

	data := payload(100<<10, 30)
	srv := httptest.NewTLSServer(serveBlob(data, ""))
	defer srv.Close()
	res, err := Download(context.Background(), srv.URL+"/a.aci", nil, Options{
		TmpDir: t.TempDir(), RootCAs: rootsOf(srv), Progress: tty, Label: "example.com/app",
	})
	tty.Close()
	got := <-out
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
	if !bytes.Contains(got, []byte("example.com/app")) || !bytes.Contains(got, []byte("100%")) ||
		!bytes.Contains(got, []byte("/102 kB")) {
		t.Errorf("terminal output %q lacks the label, 100%% or the size", got)
	}
}

func TestProgressUnknownSize(t *testing.T) {
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx)
		out <- b
	}()
	data := payload(64<<10, 31)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(data); i += 4096 { // chunked: no Content-Length
			w.Write(data[i : i+4096])
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	res, err := Download(context.Background(), srv.URL+"/a.aci", nil, Options{
		TmpDir: t.TempDir(), RootCAs: rootsOf(srv), Progress: tty, Label: "chunked",
	})
	tty.Close()
	got := <-out
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, res.Path, data)
	if !bytes.Contains(got, []byte("chunked")) {
		t.Errorf("terminal output %q lacks the label", got)
	}
}

// TestProgressNarrowTerminalResumed draws on a 40-column terminal for a
// download resumed at 1 GiB: no frame may reach the last column (it
// would wrap, and every redraw scroll), and the rate is that of the
// bytes fetched now, not a resumed gigabyte over a second.
func TestProgressNarrowTerminalResumed(t *testing.T) {
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 40}); err != nil {
		t.Skipf("setting the terminal size: %v", err)
	}
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx)
		out <- b
	}()
	p := newProgress(tty, "example.com/a-long-image-name", 2<<30, 1<<30)
	chunk := make([]byte, 64<<10)
	for i := 0; i < 12; i++ { // about 640 kB/s for 1.2 s
		time.Sleep(100 * time.Millisecond)
		p.Write(chunk)
	}
	p.done(false)
	tty.Close()
	got := string(<-out)
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
	for _, frame := range strings.FieldsFunc(got, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if n := utf8.RuneCountInString(ansi.ReplaceAllString(frame, "")); n >= 40 {
			t.Errorf("frame %q is %d columns on a 40-column terminal", frame, n)
		}
	}
	if strings.Contains(got, "GB/s") || strings.Contains(got, "TB/s") {
		t.Errorf("absurd rate after a resume: %q", got)
	}
}
