package podlog

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/journal"
)

// Journal fields of an app's entries, besides MESSAGE, PRIORITY (6 for
// stdout, 3 for stderr) and SYSLOG_IDENTIFIER (the app's name).
const (
	FieldPodUUID = "RKT_POD_UUID"
	FieldApp     = "RKT_APP"
)

// SinkOptions say where a pod's output goes.
type SinkOptions struct {
	// Dir is the directory of the apps' log files; MaxSize their size.
	Dir     string
	MaxSize int64
	UUID    string
	// Journal, if set, gets every line (and the console none).
	Journal *journal.Conn
	// Stdout and Stderr are the console (rkt's own stdout and stderr),
	// used without a journal. Prefix: each line there begins with the
	// app's name and ": "; without it the output is copied as it comes.
	Stdout, Stderr *os.File
	Prefix         bool
	// Warn prints a line about the logging itself (a journal that fails).
	Warn func(string)
}

// JournalFor returns a connection to the journal's native socket (socket,
// or the default if "") when stdout or stderr is the journal's stream
// ($JOURNAL_STREAM names it); nil if they are not, or if nothing listens
// there (then why, for a debug line).
func JournalFor(stdout, stderr *os.File, socket string) (*journal.Conn, string) {
	if !journal.IsStream(os.Getenv(journal.StreamEnv), int(stdout.Fd()), int(stderr.Fd())) {
		return nil, ""
	}
	c, err := journal.Dial(socket)
	if err != nil {
		return nil, "rkt's output is the journal, but its socket is not there: " + err.Error()
	}
	return c, "the apps' output goes to the journal"
}

// Sink takes the output of a pod's apps.
type Sink struct {
	opts    SinkOptions
	wg      sync.WaitGroup
	mu      sync.Mutex // the console
	rmu     sync.Mutex // readers
	readers []*os.File
	warned  bool
}

// NewSink returns a sink with opts.
func NewSink(opts SinkOptions) *Sink {
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	return &Sink{opts: opts}
}

// App is one app's log.
type App struct {
	s    *Sink
	name string
	file *File
}

// AddApp opens the app's log file. If that fails, the app's output
// still goes to the journal or the console, and the error says why its
// file gets nothing.
func (s *Sink) AddApp(name string) (*App, error) {
	f, err := OpenFile(s.opts.Dir, name, s.opts.MaxSize)
	if err != nil {
		f = &File{dir: -1, fd: -1, name: name}
	}
	return &App{s: s, name: name, file: f}, err
}

// Note writes a note of rkt's in the app's log file.
func (a *App) Note(msg string) {
	a.file.Write(AppendRecord(nil, time.Now(), Rkt, []byte(msg)))
}

// Read reads the app's stream (Stdout or Stderr) from r until its end,
// in a goroutine of its own; r becomes the sink's.
func (a *App) Read(stream string, r *os.File) {
	a.s.rmu.Lock()
	a.s.readers = append(a.s.readers, r)
	a.s.rmu.Unlock()
	a.s.wg.Add(1)
	go func() {
		defer a.s.wg.Done()
		a.read(stream, r)
	}()
}

// Wait waits until every stream reached its end (the pod's processes
// are gone), at most d; then the streams still open are closed (their
// writers are outside the pod) and their last lines written, for at
// most d more: a reader stuck writing to a console nobody reads is left
// behind.
func (s *Sink) Wait(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(d):
	}
	s.rmu.Lock()
	for _, r := range s.readers {
		r.Close()
	}
	s.rmu.Unlock()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// Close closes the log files of apps.
func (s *Sink) Close(apps []*App) {
	for _, a := range apps {
		a.file.Close()
	}
}

func (a *App) read(stream string, r *os.File) {
	defer r.Close()
	s := a.s
	console := s.opts.Stdout
	pri := journal.PriInfo
	if stream == Stderr {
		console, pri = s.opts.Stderr, journal.PriErr
	}
	raw := s.opts.Journal == nil && !s.opts.Prefix && console != nil
	buf := make([]byte, 32<<10)
	var pending []byte // the start of a line
	var recs, out []byte
	emit := func(now time.Time, line []byte) {
		recs = AppendRecord(recs, now, stream, line)
		if s.opts.Journal != nil {
			if a.journal(line, pri) {
				return
			}
		} else if raw {
			return
		}
		if console != nil {
			out = append(out, a.name...)
			out = append(out, ": "...)
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	closed := func() {
		a.Note("rkt: the app's " + stream + " was closed: rkt's own " + stream + " is a closed pipe")
	}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			chunk := buf[:n]
			for len(chunk) > 0 {
				i := indexNL(chunk, MaxLine-len(pending))
				if i < 0 {
					pending = append(pending, chunk...)
					break
				}
				line := chunk[:i]
				if i < len(chunk) && chunk[i] == '\n' {
					chunk = chunk[i+1:]
				} else {
					chunk = chunk[i:]
				}
				if len(pending) > 0 {
					pending = append(pending, line...)
					line = pending
				}
				emit(now, line)
				pending = pending[:0]
			}
			ok := a.flush(&recs, &out, console)
			if raw {
				ok = s.console(console, buf[:n])
			}
			if !ok {
				closed()
				return
			}
		}
		if err != nil {
			break
		}
	}
	if len(pending) > 0 {
		emit(time.Now(), pending)
		a.flush(&recs, &out, console)
	}
}

// flush writes the records to the file and the prefixed lines to the
// console; false if the console is a closed pipe.
func (a *App) flush(recs, out *[]byte, console *os.File) bool {
	if len(*recs) > 0 {
		a.file.Write(*recs)
		*recs = (*recs)[:0]
	}
	ok := true
	if len(*out) > 0 {
		ok = a.s.console(console, *out)
		*out = (*out)[:0]
	}
	return ok
}

// console writes b to w (whole, under the sink's lock, so that lines of
// two apps do not mix); false if w is a closed pipe.
func (s *Sink) console(w *os.File, b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := w.Write(b)
	return !errors.Is(err, unix.EPIPE)
}

// journal sends one line to the journal; false if it could not (the line
// then goes to the console, and the first failure is reported).
func (a *App) journal(line []byte, pri int) bool {
	s := a.s
	err := s.opts.Journal.Send(
		journal.Field{Name: "MESSAGE", Value: string(line)},
		journal.Field{Name: "PRIORITY", Value: strconv.Itoa(pri)},
		journal.Field{Name: "SYSLOG_IDENTIFIER", Value: a.name},
		journal.Field{Name: FieldPodUUID, Value: s.opts.UUID},
		journal.Field{Name: FieldApp, Value: a.name},
	)
	if err == nil {
		return true
	}
	s.mu.Lock()
	first := !s.warned
	s.warned = true
	s.mu.Unlock()
	if first {
		s.opts.Warn("stage1: app " + a.name + ": send its output to the journal: " + err.Error() + " (what the journal does not take goes to rkt's stdout and stderr)")
	}
	return false
}

// indexNL is the index of the first newline of b, or max if b has none
// in its first max bytes (a line to cut there); -1 if b is shorter.
func indexNL(b []byte, max int) int {
	for i, c := range b {
		if c == '\n' || i == max {
			return i
		}
	}
	return -1
}
