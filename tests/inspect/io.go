package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func (p *printer) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	return p.kv("wrote", path)
}

func (p *printer) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read file: %w", err)
	}
	return p.raw("<<<" + string(data) + ">>>\n")
}

// fileType names the type bits of a mode the way tests match them.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "unknown"
}

func (p *printer) statFile(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("stat file: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat file %s: no unix stat data", path)
	}
	mode := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	p.kv("file type", fileType(fi.Mode()))
	p.kv("file mode", fmt.Sprintf("%04o", mode))
	p.kv("file uid", strconv.FormatUint(uint64(st.Uid), 10))
	p.kv("file gid", strconv.FormatUint(uint64(st.Gid), 10))
	return p.kv("file size", strconv.FormatInt(fi.Size(), 10))
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func (p *printer) checkTTY() error {
	for i, name := range []string{"stdin", "stdout", "stderr"} {
		p.kv(name+" tty", strconv.FormatBool(isTerminal(i)))
	}
	return nil
}

func (p *printer) readStdin(r io.Reader) error {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read stdin: %w", err)
	}
	return p.kv("stdin", strings.TrimRight(line, "\r\n"))
}
