package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/rkt/rkt/pkg/podlog"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/stage1/podcfg"
)

// appLogs takes the fly app's stdout and stderr, as the default flavor's
// host-side process does: pipes read here, each line written to the
// app's log file (stage1abi.AppLog) and to the journal when rkt's output
// is the journal, else copied to rkt's stdout and stderr.
type appLogs struct {
	sink             *podlog.Sink
	app              *podlog.App
	stdoutR, stderrR *os.File
	stdoutW, stderrW *os.File
	done             bool
}

func newAppLogs(pod *podcfg.Pod, name string, opts *podcfg.Options) (*appLogs, error) {
	l := &appLogs{}
	var err error
	if l.stdoutR, l.stdoutW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if l.stderrR, l.stderrW, err = os.Pipe(); err != nil {
		l.stdoutR.Close()
		l.stdoutW.Close()
		return nil, err
	}
	so := podlog.SinkOptions{
		Dir: filepath.Join(pod.Dir, stage1abi.LogsDir), MaxSize: opts.LogSize, UUID: pod.UUID,
		Stdout: os.Stdout, Stderr: os.Stderr,
		Warn: func(msg string) { os.Stderr.WriteString(msg + "\n") },
	}
	so.Journal, _ = podlog.JournalFor(os.Stdout, os.Stderr, os.Getenv(stage1abi.JournalSocketEnv))
	l.sink = podlog.NewSink(so)
	if l.app, err = l.sink.AddApp(name); err != nil {
		so.Warn("stage1-fly: app " + name + ": its log file: " + err.Error())
	}
	return l, nil
}

// started closes the app's ends and begins reading.
func (l *appLogs) started() {
	if l == nil {
		return
	}
	l.stdoutW.Close()
	l.stderrW.Close()
	l.app.Read(podlog.Stdout, l.stdoutR)
	l.app.Read(podlog.Stderr, l.stderrR)
	l.stdoutR, l.stderrR = nil, nil
}

// finish waits for the app's last lines (at most 2 s for writers that
// outlive it) and closes the log file; only the first call does.
func (l *appLogs) finish() {
	if l == nil || l.done {
		return
	}
	l.done = true
	for _, f := range []*os.File{l.stdoutR, l.stderrR, l.stdoutW, l.stderrW} {
		if f != nil {
			f.Close()
		}
	}
	l.sink.Wait(2 * time.Second)
	l.sink.Close([]*podlog.App{l.app})
}
