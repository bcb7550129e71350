package tests

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/journal"
	"github.com/rkt/rkt/pkg/podlog"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/tests/testutils"
)

// Functional tests of the apps' logs: the per-app files in the pod
// directory, rkt logs, the app-name prefixes on rkt's own output, and the
// journal (a datagram socket of the test's standing in for journald).

// logs runs `rkt logs ARGS...`.
func (e *realEnv) logs(args ...string) (stdout, stderr string) {
	e.t.Helper()
	r := e.Run(append([]string{"logs"}, args...)...)
	if r.Exit != 0 {
		e.t.Fatalf("%s", describeResult(append([]string{"logs"}, args...), r))
	}
	return r.Stdout, r.Stderr
}

// TestLogsStdoutStderr: an app's stdout and stderr reach rkt's stdout and
// stderr as they are (one app: no prefix) and its log file; rkt logs
// prints them again, each on its stream, after the pod exited; --app
// with an app the pod lacks is an error.
func TestLogsStdoutStderr(t *testing.T) {
	e := newRealEnv(t)
	uuid, r := e.runUUID(append([]string{e.img, "--name=web"}, shExec(`echo out1; echo err1 >&2; printf 'out2\nno newline'`)...)...)
	if r.Exit != 0 || r.Stdout != "out1\nout2\nno newline" || !strings.Contains(r.Stderr, "err1\n") {
		t.Fatalf("%s", describeResult([]string{"run"}, r))
	}
	if _, err := os.Stat(filepath.Join(e.podDir(uuid), stage1abi.AppLog("web"))); err != nil {
		t.Errorf("no log file: %v", err)
	}
	out, errOut := e.logs(uuid)
	if out != "out1\nout2\nno newline\n" || errOut != "err1\n" {
		t.Errorf("rkt logs: stdout %q, stderr %q", out, errOut)
	}
	out, _ = e.logs("--app=web", "--timestamps", uuid)
	first, _, _ := strings.Cut(out, " ")
	if ts, err := time.Parse(time.RFC3339Nano, first); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("--timestamps: %q (%v)", out, err)
	}
	e.MustFail(254, `has no app "nope"`, "logs", "--app=nope", uuid)
	e.MustFail(254, "--since", "logs", "--since=yesterday", uuid)
}

// TestLogsMultiApp: in a pod of two apps each line on rkt's stdout and
// stderr begins with its app's name (not with --log-prefix=false); rkt
// logs prefixes them too, --app picks one, --since drops what came
// before.
func TestLogsMultiApp(t *testing.T) {
	e := newRealEnv(t)
	args := append(append([]string{e.img, "--name=a"}, shExec(`echo early; sleep 2; echo late`)...),
		append([]string{e.img, "--name=b"}, shExec(`echo from-b >&2`)...)...)
	uuid, r := e.runUUID(args...)
	if r.Exit != 0 || r.Stdout != "a: early\na: late\n" || !strings.Contains(r.Stderr, "b: from-b\n") {
		t.Fatalf("%s", describeResult([]string{"run", "two apps"}, r))
	}
	out, errOut := e.logs(uuid)
	if out != "a: early\na: late\n" || errOut != "b: from-b\n" {
		t.Errorf("rkt logs: stdout %q, stderr %q", out, errOut)
	}
	if out, errOut := e.logs("--app=b", uuid); out != "" || errOut != "from-b\n" {
		t.Errorf("rkt logs --app=b: stdout %q, stderr %q", out, errOut)
	}
	// --since: a time between the two lines of a (2 s apart).
	out, _ = e.logs("--app=a", "--timestamps", uuid)
	first, _, _ := strings.Cut(out, " ")
	early, err := time.Parse(time.RFC3339Nano, first)
	if err != nil {
		t.Fatalf("--timestamps: %q", out)
	}
	if out, _ := e.logs("--app=a", "--since="+early.Add(time.Second).Format(time.RFC3339Nano), uuid); out != "late\n" {
		t.Errorf("--since=TIME: %q, want late only", out)
	}
	if out, _ := e.logs("--app=a", "--since=1h", uuid); out != "early\nlate\n" {
		t.Errorf("--since=1h: %q", out)
	}
	time.Sleep(1100 * time.Millisecond)
	if out, errOut := e.logs("--since=1s", uuid); out != "" || errOut != "" {
		t.Errorf("--since=1s, a second after the pod exited: %q %q", out, errOut)
	}
	_, r = e.runUUID(append([]string{"--log-prefix=false"}, args...)...)
	if r.Exit != 0 || r.Stdout != "early\nlate\n" || !strings.Contains(r.Stderr, "from-b\n") || strings.Contains(r.Stderr, "b: ") {
		t.Errorf("--log-prefix=false: %s", describeResult([]string{"run", "two apps"}, r))
	}
}

// TestLogsFollow: rkt logs --follow prints what the app writes while it
// runs and ends once the pod has exited.
func TestLogsFollow(t *testing.T) {
	e := newRealEnv(t)
	bp := e.start(nil, append([]string{e.img}, shExec(`echo first; sleep 3; echo second; echo bye >&2`)...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.Cmd(ctx, "logs", "--follow", bp.UUID)
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = outW, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		var acc string
		for {
			n, err := outR.Read(buf)
			acc += string(buf[:n])
			for {
				l, rest, ok := strings.Cut(acc, "\n")
				if !ok {
					break
				}
				lines <- l
				acc = rest
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case l := <-lines:
		if l != "first" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rkt logs --follow printed nothing while the pod ran")
	}
	select {
	case <-bp.done:
		t.Fatal("the pod exited before its first line was followed: the test is too slow")
	default:
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rkt logs --follow: %v\n%s", err, errb.String())
	}
	select {
	case <-bp.done:
	default:
		t.Fatal("rkt logs --follow ended while the pod was running")
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if strings.Join(rest, "|") != "second" || errb.String() != "bye\n" {
		t.Errorf("followed after the first line: %q, stderr %q", rest, errb.String())
	}
}

// TestLogsRotation: an app's log files stay within --log-size (the
// current one and one rotated), keeping the newest lines; a --log-size
// below the minimum is refused.
func TestLogsRotation(t *testing.T) {
	e := newRealEnv(t)
	script := `i=0; while [ $i -lt 2000 ]; do echo "line-$i-` + strings.Repeat("x", 300) + `"; i=$((i+1)); done`
	uuid, r := e.runUUID(append([]string{"--log-size=64Ki", e.img, "--name=web"}, shExec(script)...)...)
	if r.Exit != 0 || strings.Count(r.Stdout, "\n") != 2000 {
		t.Fatalf("%s", describeResult([]string{"run"}, r))
	}
	base := filepath.Join(e.podDir(uuid), stage1abi.AppLog("web"))
	for _, f := range []string{base, base + podlog.RotatedSuffix} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 64<<10 {
			t.Errorf("%s: %d bytes, more than --log-size=64Ki", f, fi.Size())
		}
	}
	out, _ := e.logs(uuid)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 100 || len(lines) > 2*(64<<10)/300 {
		t.Errorf("%d lines kept", len(lines))
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "line-1999-") {
		t.Errorf("last line %.20q, want line-1999", last)
	}
	if strings.HasPrefix(lines[0], "line-0-") {
		t.Errorf("the first line is still there: nothing was rotated away")
	}
	e.MustFail(254, "--log-size", append([]string{insecureImage, "run", hostNet, "--log-size=1k", e.img}, shExec("true")...)...)
}

// TestLogsJournal: when rkt's stdout and stderr are the journal
// (JOURNAL_STREAM names them), each line goes to the journal's native
// socket as an entry with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and the pod
// and app, not to rkt's stdout, and to the log file too. The test's
// socket stands in for journald (RKT_JOURNAL_SOCKET).
func TestLogsJournal(t *testing.T) {
	e := newRealEnv(t)
	sock := filepath.Join(t.TempDir(), "journal.socket")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(30 * time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	// rkt's stdout and stderr: one pipe, whose device and inode are the
	// JOURNAL_STREAM systemd would set.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	stream := strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino, 10)
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.Cmd(ctx, append([]string{insecureImage, "run", hostNet, "--uuid-file-save=" + uuidFile, e.img, "--name=web"}, shExec(`echo to-journal; echo err-journal >&2`)...)...)
	cmd.Env = append(os.Environ(), journal.StreamEnv+"="+stream, stage1abi.JournalSocketEnv+"="+sock)
	cmd.Stdout, cmd.Stderr = w, w
	console := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		console <- b.String()
	}()
	err = cmd.Run()
	w.Close()
	out := <-console
	if err != nil {
		t.Fatalf("rkt run: %v\n%s", err, out)
	}
	if strings.Contains(out, "to-journal") || strings.Contains(out, "err-journal") {
		t.Errorf("the app's output reached rkt's stdout too: %q", out)
	}
	data, _ := os.ReadFile(uuidFile)
	uuid := strings.TrimSpace(string(data))
	got := map[string]map[string]string{}
	buf := make([]byte, 64<<10)
	for len(got) < 2 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("journal entries received: %v; then: %v", got, err)
		}
		m := journal.Parse(buf[:n])
		got[m["MESSAGE"]] = m
	}
	for msg, pri := range map[string]string{"to-journal": "6", "err-journal": "3"} {
		m := got[msg]
		if m == nil || m["PRIORITY"] != pri || m["SYSLOG_IDENTIFIER"] != "web" || m[podlog.FieldPodUUID] != uuid || m[podlog.FieldApp] != "web" {
			t.Errorf("entry of %q: %q (pod %s)", msg, m, uuid)
		}
	}
	if out, errOut := e.logs(uuid); out != "to-journal\n" || errOut != "err-journal\n" {
		t.Errorf("rkt logs: %q %q", out, errOut)
	}
}

// TestLogsFly: the fly flavor keeps its app's log file too.
func TestLogsFly(t *testing.T) {
	e := newRealEnv(t)
	requireStage1Beside(t, e.Bin, "stage1-fly.aci")
	uuid, r := e.runUUID(append([]string{"--stage1-from-dir=stage1-fly.aci", e.img, "--name=web"}, shExec(`echo fly-out; echo fly-err >&2`)...)...)
	if r.Exit != 0 || r.Stdout != "fly-out\n" || !strings.Contains(r.Stderr, "fly-err\n") {
		t.Fatalf("%s", describeResult([]string{"run", "fly"}, r))
	}
	if out, errOut := e.logs(uuid); out != "fly-out\n" || errOut != "fly-err\n" {
		t.Errorf("rkt logs: stdout %q, stderr %q", out, errOut)
	}
}

// TestLogsInteractive: an app run with --interactive has the terminal:
// its output is not logged, and its log says so.
func TestLogsInteractive(t *testing.T) {
	e := newRealEnv(t)
	uuid, r := e.runUUID(append([]string{"--interactive", e.img, "--name=web"}, shExec(`echo on-the-terminal`)...)...)
	if r.Exit != 0 || !strings.Contains(r.Stdout, "on-the-terminal") {
		t.Fatalf("%s", describeResult([]string{"run", "--interactive"}, r))
	}
	out, errOut := e.logs(uuid)
	if out != "" || !strings.Contains(errOut, "--interactive") || strings.Contains(errOut, "on-the-terminal") {
		t.Errorf("rkt logs of an interactive app: stdout %q, stderr %q", out, errOut)
	}
}

// TestLogsUnreadConsole: a pod whose rkt stdout nobody reads (the app is
// stuck writing) still stops: rkt stop ends it and rkt exits, its log
// file holding what got through.
func TestLogsUnreadConsole(t *testing.T) {
	e := newRealEnv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // never read
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := e.Cmd(ctx, append([]string{insecureImage, "run", hostNet, "--uuid-file-save=" + uuidFile, e.img, "--name=web"},
		shExec(`echo started >&2; while :; do echo `+strings.Repeat("y", 200)+`; done`)...)...)
	cmd.Stdout = w
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var uuid string
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(uuidFile)
		uuid = strings.TrimSpace(string(data))
		log, _ := os.ReadFile(filepath.Join(e.podDir(uuid), stage1abi.AppLog("web")))
		if uuid != "" && strings.Count(string(log), "\n") > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app's output did not reach its log file")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.MustRun("stop", uuid)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("rkt did not exit after rkt stop\nstderr: %s", errb.String())
	}
	if out, _ := e.logs(uuid); !strings.HasPrefix(out, strings.Repeat("y", 200)+"\n") {
		t.Errorf("rkt logs: %.100q", out)
	}
}

// TestLogsEventHandlers: what an app's event handlers write is in the
// app's log, in order, in both flavors.
func TestLogsEventHandlers(t *testing.T) {
	e := newRealEnv(t)
	a := e.inspectACI("rkt.dev/loghandlers")
	a.Image.Exec = []string{"/bin/sh", "-c", "echo app-out"}
	a.Image.EventHandlers = []testutils.EventHandler{
		{Name: "pre-start", Exec: []string{"/bin/sh", "-c", "echo pre-out"}},
		{Name: "post-stop", Exec: []string{"/bin/sh", "-c", "echo post-out >&2"}},
	}
	img := e.writeImage("loghandlers.aci", a)
	for _, flavor := range []string{"default", "fly"} {
		t.Run(flavor, func(t *testing.T) {
			args := []string{img}
			if flavor == "fly" {
				requireStage1Beside(t, e.Bin, "stage1-fly.aci")
				args = append([]string{"--stage1-from-dir=stage1-fly.aci"}, args...)
			}
			uuid, r := e.runUUID(args...)
			if r.Exit != 0 {
				t.Fatalf("%s", describeResult(args, r))
			}
			if out, errOut := e.logs(uuid); out != "pre-out\napp-out\n" || errOut != "post-out\n" {
				t.Errorf("rkt logs: stdout %q (want pre-out then app-out), stderr %q", out, errOut)
			}
		})
	}
}
