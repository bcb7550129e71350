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
	l.app.Read(podlog.Stdout, l.stdoutR)
	l.app.Read(podlog.Stderr, l.stderrR)
	return l, nil
}

// finish, once the app's processes (the app and its event handlers,
// which all get stdoutW and stderrW) are done, closes this process's
// write ends, waits for the last lines (at most 2 s for writers that
// outlive them) and closes the log file.
func (l *appLogs) finish() {
	l.stdoutW.Close()
	l.stderrW.Close()
	l.sink.Wait(2 * time.Second)
	l.sink.Close([]*podlog.App{l.app})
}
