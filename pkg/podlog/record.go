// Package podlog keeps the apps' output of a pod: the record format of
// the per-app log files in the pod directory (one line per record,
// "TIME STREAM MESSAGE"), the bounded rotating writer of those files,
// the sink that reads an app's stdout and stderr pipes and writes each
// line to its file and to the journal or rkt's own stdout and stderr,
// and the reader `rkt logs` uses (docs/systemd.md, "Logs"). The writing
// side runs in the pod's small, resident host-side process: it imports
// neither fmt nor encoding/json.
package podlog

import (
	"strings"
	"time"
)

// MaxLine is the longest message of one record: a longer line is split
// into records of MaxLine bytes.
const MaxLine = 16 << 10

// TimeLayout is the records' time: UTC, fixed width (so records sort as
// text), in nanoseconds.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// Streams of a record: what the app wrote on its stdout or stderr, or a
// note by rkt itself (dropped records, an interactive app).
const (
	Stdout = "stdout"
	Stderr = "stderr"
	Rkt    = "rkt"
)

// Record is one line of a log file.
type Record struct {
	Time    time.Time
	Stream  string
	Message string
}

// AppendRecord appends the record of msg (no newline in it) to b.
func AppendRecord(b []byte, t time.Time, stream string, msg []byte) []byte {
	b = t.UTC().AppendFormat(b, TimeLayout)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, msg...)
	return append(b, '\n')
}

// ParseRecord parses one line of a log file (without its newline).
func ParseRecord(line string) (Record, bool) {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return Record{}, false
	}
	stream, msg, ok := strings.Cut(rest, " ")
	if !ok || (stream != Stdout && stream != Stderr && stream != Rkt) {
		return Record{}, false
	}
	t, err := time.Parse(TimeLayout, ts)
	if err != nil {
		return Record{}, false
	}
	return Record{Time: t, Stream: stream, Message: msg}, true
}
