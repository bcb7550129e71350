// Package journal writes entries to systemd's journal through its native
// protocol (systemd.journal-fields(7), "Native Journal Protocol"): one
// datagram per entry on the unix socket /run/systemd/journal/socket, each
// field "NAME=value\n", or, for a value holding a newline, the binary-safe
// form "NAME\n" + the value's length (64-bit little endian) + the value +
// "\n". An entry too large for one datagram goes in a sealed memfd passed
// with SCM_RIGHTS. It also tells whether a process's stdout or stderr is
// connected to the journal ($JOURNAL_STREAM). It is small and imports
// neither fmt nor encoding/json: the pod's host-side process links it.
package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SocketPath is journald's native socket.
const SocketPath = "/run/systemd/journal/socket"

// StreamEnv is set by systemd for a service whose stdout or stderr is
// connected to the journal: "DEVICE:INODE" of that stream.
const StreamEnv = "JOURNAL_STREAM"

// Priorities (syslog levels) of the PRIORITY field.
const (
	PriErr  = 3
	PriInfo = 6
)

// Field is one field of an entry. Names are upper-case letters, digits
// and underscores, not starting with an underscore (journald drops the
// others); values may hold any bytes.
type Field struct {
	Name  string
	Value string
}

// Append appends f in the native protocol's encoding to b.
func Append(b []byte, f Field) []byte {
	if strings.IndexByte(f.Value, '\n') < 0 {
		b = append(b, f.Name...)
		b = append(b, '=')
		b = append(b, f.Value...)
		return append(b, '\n')
	}
	b = append(b, f.Name...)
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(f.Value)))
	b = append(b, f.Value...)
	return append(b, '\n')
}

// Encode returns the entry of fields in the native protocol's encoding.
func Encode(fields ...Field) []byte {
	n := 0
	for _, f := range fields {
		n += len(f.Name) + len(f.Value) + 10
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = Append(b, f)
	}
	return b
}

// Conn sends entries to a journal socket. It is safe for concurrent use.
type Conn struct {
	fd   int
	addr *unix.SockaddrUnix
}

// Dial returns a Conn for the native socket at path ("" for SocketPath),
// once a probe connect(2) to it succeeded: an error means there is no
// journal listening there.
func Dial(path string) (*Conn, error) {
	if path == "" {
		path = SocketPath
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "socket", Path: path, Err: err}
	}
	// A journal that does not keep up slows the pod's output down, but
	// for a bounded time: then entries are dropped (Send says so).
	tv := unix.NsecToTimeval(int64(time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	c := &Conn{fd: fd, addr: &unix.SockaddrUnix{Name: path}}
	probe, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Connect(probe, c.addr)
		unix.Close(probe)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return c, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// Send sends one entry.
func (c *Conn) Send(fields ...Field) error {
	return c.SendEncoded(Encode(fields...))
}

// SendEncoded sends an entry already encoded (Encode, Append); entries
// larger than a datagram go through a sealed memfd.
func (c *Conn) SendEncoded(entry []byte) error {
	err := c.send(entry)
	if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
		err = c.sendMemfd(entry)
	}
	return err
}

func (c *Conn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, c.addr)
		if err != unix.EINTR {
			return err
		}
	}
}

// sendMemfd passes the entry in a sealed memfd, as journald requires for
// large entries (it refuses an unsealed one).
func (c *Conn) sendMemfd(entry []byte) error {
	fd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for off := 0; off < len(entry); {
		n, err := unix.Write(fd, entry[off:])
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		off += n
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return err
	}
	for {
		err := unix.Sendmsg(c.fd, nil, unix.UnixRights(fd), c.addr, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// IsStream reports whether one of fds (a process's stdout and stderr) is
// the stream $JOURNAL_STREAM names (env is its value): systemd.exec(5)
// says to compare the device and inode, since the variable is inherited
// by children whose output may go elsewhere.
func IsStream(env string, fds ...int) bool {
	dev, ino, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && uint64(st.Dev) == d && uint64(st.Ino) == i {
			return true
		}
	}
	return false
}

// Parse decodes an entry in the native protocol's encoding (for tests
// and tools); a malformed rest is ignored.
func Parse(b []byte) map[string]string {
	m := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			break
		}
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			m[string(line[:eq])] = string(line[eq+1:])
			b = b[nl+1:]
			continue
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			break
		}
		n := binary.LittleEndian.Uint64(rest)
		if uint64(len(rest)-8) < n+1 {
			break
		}
		m[string(line)] = string(rest[8 : 8+n])
		b = rest[8+n+1:]
	}
	return m
}
