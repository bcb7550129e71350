package host

import (
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/podlog"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/stage1/supervisor"
)

// podLogs takes the apps' output in the host-side process, out of the
// pod's reach: the supervisor sends the read ends of each app's stdout
// and stderr pipes (supervisor.LogFd), and a goroutine per stream writes
// every line to the app's log file in the pod directory
// (stage1abi.AppLog) and to the journal, when rkt's stdout or stderr is
// the journal ($JOURNAL_STREAM) and its native socket takes entries, or
// else to rkt's own stdout and stderr, prefixed with the app's name in a
// pod of several apps (unless --log-prefix=false).
type podLogs struct {
	clone CloneLine
	sock  *os.File // ours; the supervisor's end is its LogFd
	pod   *os.File
	logf  func(string)
	done  chan struct{}
	sink  *podlog.Sink
	apps  []*podlog.App
	begun bool
	once  sync.Once
}

// newPodLogs makes the socket the supervisor sends the pipes on.
func newPodLogs(clone CloneLine, logf func(string)) (*podLogs, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &podLogs{
		clone: clone, logf: logf, done: make(chan struct{}),
		sock: os.NewFile(uintptr(fds[0]), "logs"), pod: os.NewFile(uintptr(fds[1]), "logs"),
	}, nil
}

// started closes the supervisor's end and begins taking the pipes.
func (l *podLogs) started() {
	l.pod.Close()
	l.begun = true
	go l.receive()
}

// appPipes is what the supervisor sent for one app.
type appPipes struct {
	name           string
	stdout, stderr *os.File // nil: the app has a terminal
}

func (l *podLogs) receive() {
	defer close(l.done)
	apps := l.recvApps()
	l.sock.Close()
	if len(apps) == 0 {
		return
	}
	l.startSink(apps)
}

// recvApps reads the supervisor's messages until it closes its end.
// What is not an app name with two pipes (or none) is dropped.
func (l *podLogs) recvApps() []appPipes {
	var apps []appPipes
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(l.sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || (n == 0 && oobn == 0) {
			break
		}
		fds := rights(oob[:oobn])
		name, ok := strings.CutPrefix(string(buf[:n]), supervisor.LogApp)
		if !ok || name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || (len(fds) != 0 && len(fds) != 2) {
			closeAll(fds)
			continue
		}
		a := appPipes{name: name}
		if len(fds) == 2 {
			a.stdout, a.stderr = pipe(fds[0], "stdout"), pipe(fds[1], "stderr")
			if a.stdout == nil || a.stderr == nil {
				closeAll(fds)
				continue
			}
		}
		apps = append(apps, a)
	}
	return apps
}

// startSink opens the apps' log files and starts reading their pipes.
func (l *podLogs) startSink(apps []appPipes) {
	opts := podlog.SinkOptions{
		Dir: stage1abi.LogsDir, MaxSize: l.clone.LogSize, UUID: l.clone.UUID,
		Stdout: os.Stdout, Stderr: os.Stderr,
		Prefix: l.clone.LogPrefix && len(apps) > 1,
		Warn:   warn,
	}
	var why string
	if opts.Journal, why = podlog.JournalFor(os.Stdout, os.Stderr, os.Getenv(stage1abi.JournalSocketEnv)); why != "" {
		l.logf(why)
	}
	l.sink = podlog.NewSink(opts)
	for _, a := range apps {
		la, err := l.sink.AddApp(a.name)
		if err != nil {
			warn("stage1: app " + a.name + ": its log file: " + err.Error())
		}
		l.apps = append(l.apps, la)
		if a.stdout == nil {
			la.Note("rkt: the app had the terminal (--interactive): its output went there and is not logged")
			continue
		}
		la.Read(podlog.Stdout, a.stdout)
		la.Read(podlog.Stderr, a.stderr)
	}
}

// pipe returns fd as a file, non-blocking (so that closing it ends a
// read), if it is a pipe; the pod could send nothing else.
func pipe(fd int, name string) *os.File {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	if unix.SetNonblock(fd, true) != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), name)
}

func rights(oob []byte) []int {
	var fds []int
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for i := range msgs {
		if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// finish waits, once the pod's processes are gone, until every line was
// taken (at most 2 s more, for a writer outside the pod), and closes the
// log files. Only the first call does something.
func (l *podLogs) finish() {
	if l == nil {
		return
	}
	l.once.Do(l.finishOnce)
}

func (l *podLogs) finishOnce() {
	if !l.begun {
		l.sock.Close()
		l.pod.Close()
		return
	}
	select {
	case <-l.done:
	case <-time.After(2 * time.Second):
		l.sock.Close()
		<-l.done
	}
	if l.sink != nil {
		l.sink.Wait(2 * time.Second)
		l.sink.Close(l.apps)
	}
}
