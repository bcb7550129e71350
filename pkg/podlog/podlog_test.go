package podlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/journal"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 4, 19, 0, 0, 5, time.UTC)
	b := AppendRecord(nil, now, Stderr, []byte("a b  c"))
	if string(b) != "2026-12-04T19:00:00.000000005Z stderr a b  c\n" {
		t.Fatalf("record %q", b)
	}
	r, ok := ParseRecord(strings.TrimSuffix(string(b), "\n"))
	if !ok || !r.Time.Equal(now) || r.Stream != Stderr || r.Message != "a b  c" {
		t.Errorf("parsed %+v %v", r, ok)
	}
	for _, bad := range []string{"", "x stdout m", "2026-12-04T19:00:00.000000005Z other m", "2026-12-04T19:00:00.000000005Z stdout"} {
		if _, ok := ParseRecord(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFileRotatesWithinBound(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, "app", MinMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := []byte(strings.Repeat("y", 1000))
	var batch []byte
	for i := 0; i < 500; i++ { // about 0.5 MB, in batches of 10 records
		batch = AppendRecord(batch, time.Now(), Stdout, line)
		if i%10 == 9 {
			f.Write(batch)
			batch = batch[:0]
		}
	}
	for _, n := range []string{"app", "app.1"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > MinMaxSize || fi.Size() < MinMaxSize/2 {
			t.Errorf("%s: %d bytes, want at most %d", n, fi.Size(), MinMaxSize)
		}
	}
	recs, err := NewReader(dir, "app").Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 100 || len(recs) > 2*MinMaxSize/1000 {
		t.Errorf("%d records kept", len(recs))
	}
	for _, r := range recs {
		if r.Message != string(line) {
			t.Fatalf("a torn record: %q", r.Message)
		}
	}
}

func TestFileDropsAndCountsOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, "app", DefaultMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(AppendRecord(nil, time.Now(), Stdout, []byte("before")))
	good := f.fd
	full, err := unix.Open("/dev/full", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	f.fd = full
	done := make(chan struct{})
	go func() {
		f.Write(AppendRecord(AppendRecord(nil, time.Now(), Stdout, []byte("lost 1")), time.Now(), Stderr, []byte("lost 2")))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a full disk")
	}
	if n := f.Dropped(); n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
	f.fd = good
	unix.Close(full)
	f.Write(AppendRecord(nil, time.Now(), Stdout, []byte("after")))
	recs, _ := NewReader(dir, "app").Next()
	var msgs []string
	for _, r := range recs {
		msgs = append(msgs, r.Stream+":"+r.Message)
	}
	got := strings.Join(msgs, "|")
	if !strings.HasPrefix(got, "stdout:before|rkt:rkt: 2 records were lost: ") || !strings.HasSuffix(got, "|stdout:after") {
		t.Errorf("records: %s", got)
	}
}

// sinkRun feeds input to one stream of an app of a sink and returns the
// log file's records and what reached the console.
func sinkRun(t *testing.T, opts SinkOptions, input string) ([]Record, string) {
	t.Helper()
	dir := t.TempDir()
	opts.Dir = dir
	cr, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	opts.Stdout, opts.Stderr = cw, cw
	s := NewSink(opts)
	a, err := s.AddApp("web")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a.Read(Stdout, r)
	got := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := cr.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.String()
	}()
	w.WriteString(input)
	w.Close()
	s.Wait(5 * time.Second)
	s.Close([]*App{a})
	cw.Close()
	console := <-got
	recs, err := NewReader(dir, "web").Next()
	if err != nil {
		t.Fatal(err)
	}
	return recs, console
}

func messages(recs []Record) []string {
	var m []string
	for _, r := range recs {
		m = append(m, r.Message)
	}
	return m
}

func TestSinkLinesAndConsole(t *testing.T) {
	long := strings.Repeat("z", MaxLine+10)
	input := "one\n\ntwo\n" + long + "\nlast, no newline"
	recs, console := sinkRun(t, SinkOptions{}, input)
	want := []string{"one", "", "two", long[:MaxLine], long[MaxLine:], "last, no newline"}
	if got := messages(recs); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("records %q\nwant %q", got, want)
	}
	if console != input {
		t.Errorf("console (no prefix) %q, want the output as it came", console)
	}
	_, console = sinkRun(t, SinkOptions{Prefix: true}, "a\nb")
	if console != "web: a\nweb: b\n" {
		t.Errorf("console with prefixes %q", console)
	}
}

func TestSinkJournal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "journal")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
	c, err := journal.Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recs, console := sinkRun(t, SinkOptions{Journal: c, UUID: "u-1", Prefix: true}, "hello\n")
	if console != "" || len(recs) != 1 {
		t.Errorf("console %q, records %v", console, recs)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatal(err)
	}
	e := journal.Parse(buf[:n])
	if e["MESSAGE"] != "hello" || e["PRIORITY"] != "6" || e["SYSLOG_IDENTIFIER"] != "web" || e[FieldPodUUID] != "u-1" || e[FieldApp] != "web" {
		t.Errorf("entry %q", e)
	}
}

func TestReaderFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, "app", MinMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(dir, "app")
	defer r.Close()
	line := strings.Repeat("q", 1000)
	total := 0
	for round := 0; round < 5; round++ {
		for i := 0; i < 40; i++ { // 40 KB: a rotation every other round
			f.Write(AppendRecord(nil, time.Now(), Stdout, []byte(line)))
		}
		recs, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		total += len(recs)
	}
	if total != 200 {
		t.Errorf("read %d records, want 200", total)
	}
}

// TestOpenFileFollowsNoSymlink: a symlink planted where an app's log
// file goes is not followed (its target is neither truncated nor written).
func TestOpenFileFollowsNoSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(dir, "app", MinMaxSize)
	if err == nil {
		f.Write(AppendRecord(nil, time.Now(), Stdout, []byte("written")))
		f.Close()
		t.Error("OpenFile followed a symlink")
	}
	if data, _ := os.ReadFile(target); string(data) != "precious" {
		t.Errorf("the symlink's target was changed: %q", data)
	}
}

// TestSinkClosedConsole: when the console is a closed pipe, the app's
// stream is closed too (the app gets EPIPE, as writing there itself), and
// its log file says so.
func TestSinkClosedConsole(t *testing.T) {
	dir := t.TempDir()
	cr, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cr.Close()
	defer cw.Close()
	s := NewSink(SinkOptions{Dir: dir, Stdout: cw, Stderr: cw})
	a, err := s.AddApp("web")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a.Read(Stdout, r)
	w.WriteString("kept\n")
	s.Wait(5 * time.Second)
	if _, err := w.WriteString("more\n"); err == nil {
		t.Error("the app's stream is still open")
	}
	s.Close([]*App{a})
	recs, _ := NewReader(dir, "web").Next()
	if len(recs) != 2 || recs[0].Message != "kept" || recs[1].Stream != Rkt {
		t.Errorf("records %+v", recs)
	}
}

// TestSinkWaitBounded: Wait returns even when a reader is stuck writing
// to a console nobody reads (a full pipe), so that rkt can exit and
// release the pod.
func TestSinkWaitBounded(t *testing.T) {
	cr, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	defer cw.Close()
	s := NewSink(SinkOptions{Dir: t.TempDir(), Stdout: cw, Stderr: cw})
	a, _ := s.AddApp("web")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a.Read(Stdout, r)
	go func() {
		w.Write(make([]byte, 1<<20)) // more than the console pipe holds
		w.Close()
	}()
	start := time.Now()
	s.Wait(200 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Wait took %v", d)
	}
	s.Close([]*App{a})
}
