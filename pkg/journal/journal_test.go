package journal

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAppendPlainAndBinarySafe(t *testing.T) {
	got := Encode(Field{"MESSAGE", "hello world"}, Field{"PRIORITY", "6"})
	if string(got) != "MESSAGE=hello world\nPRIORITY=6\n" {
		t.Errorf("plain fields: %q", got)
	}
	v := "two\nlines"
	got = Encode(Field{"MESSAGE", v})
	want := []byte("MESSAGE\n")
	want = binary.LittleEndian.AppendUint64(want, uint64(len(v)))
	want = append(want, v...)
	want = append(want, '\n')
	if !bytes.Equal(got, want) {
		t.Errorf("binary-safe field: %q, want %q", got, want)
	}
	if got := Parse(got); len(got) != 1 || got["MESSAGE"] != v {
		t.Errorf("parsed back: %q", got)
	}
}

// listen is a test journal: a unix datagram socket.
func listen(t *testing.T) (string, int) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "socket")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(5e9)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return p, fd
}

// recv reads one entry, from the datagram or the memfd it carries.
func recv(t *testing.T, fd int) (map[string]string, bool) {
	t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if oobn == 0 {
		return Parse(buf[:n]), false
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v %v", fds, err)
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_WRITE == 0 {
		t.Errorf("memfd not sealed: %#x %v", seals, err)
	}
	data := make([]byte, 1<<20)
	m, _ := unix.Pread(fds[0], data, 0)
	return Parse(data[:m]), true
}

func TestSendDatagram(t *testing.T) {
	p, fd := listen(t)
	c, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(Field{"MESSAGE", "hi\nthere"}, Field{"SYSLOG_IDENTIFIER", "app"}); err != nil {
		t.Fatal(err)
	}
	got, memfd := recv(t, fd)
	if memfd || got["MESSAGE"] != "hi\nthere" || got["SYSLOG_IDENTIFIER"] != "app" {
		t.Errorf("got %q (memfd %v)", got, memfd)
	}
}

func TestSendLargeEntryThroughMemfd(t *testing.T) {
	p, fd := listen(t)
	c, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The datagram limit is the sender's buffer: make it small.
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 64<<10)
	if err := c.Send(Field{"MESSAGE", big}, Field{"PRIORITY", "3"}); err != nil {
		t.Fatal(err)
	}
	got, memfd := recv(t, fd)
	if !memfd || got["MESSAGE"] != big || got["PRIORITY"] != "3" {
		t.Errorf("memfd %v, MESSAGE of %d bytes, PRIORITY %q", memfd, len(got["MESSAGE"]), got["PRIORITY"])
	}
}

func TestDialNoJournal(t *testing.T) {
	if _, err := Dial(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("Dial of a missing socket succeeded")
	}
}

func TestIsStream(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	env := strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino, 10)
	if !IsStream(env, int(r.Fd()), int(w.Fd())) {
		t.Errorf("%s: not the pipe's stream", env)
	}
	other := strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino+1, 10)
	for _, e := range []string{"", "x", "1:y", other} {
		if IsStream(e, int(w.Fd())) {
			t.Errorf("%q taken for the pipe's stream", e)
		}
	}
}
