package podlog

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMaxSize is the default size of an app's log file: when a record
// would make it larger, it is renamed NAME.1 (replacing the previous one)
// and a new file begun, so an app's logs take at most twice this.
const DefaultMaxSize = 1 << 20

// MinMaxSize is the smallest size allowed (a few records of MaxLine).
const MinMaxSize = 64 << 10

// RotatedSuffix is the suffix of the rotated file.
const RotatedSuffix = ".1"

// File is an app's bounded log file, NAME in its directory, rotated to
// NAME.1. Writing never blocks on a full disk: what cannot be written
// is dropped and counted, and a note saying how many records were lost
// is written once writing works again. It is safe for concurrent use.
type File struct {
	mu      sync.Mutex
	dir     int // directory descriptor
	name    string
	fd      int
	size    int64
	limit   int64
	dropped int64
	lastErr error
}

// OpenFile creates (or truncates) the log file name in the directory
// dir, which it creates if needed. Neither is followed if a symlink.
func OpenFile(dir, name string, limit int64) (*File, error) {
	if limit < MinMaxSize {
		limit = MinMaxSize
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := &File{dir: dfd, name: name, limit: limit, fd: -1}
	if err := f.create(); err != nil {
		unix.Close(dfd)
		return nil, err
	}
	return f, nil
}

func (f *File) create() error {
	fd, err := unix.Openat(f.dir, f.name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return &os.PathError{Op: "open", Path: f.name, Err: err}
	}
	f.fd, f.size = fd, 0
	return nil
}

// rotate renames the file to NAME.1 and begins a new one; if that fails,
// the file is emptied instead, so that it stays bounded.
func (f *File) rotate() {
	if err := unix.Renameat(f.dir, f.name, f.dir, f.name+RotatedSuffix); err == nil {
		unix.Close(f.fd)
		f.fd = -1
		if f.create() == nil {
			return
		}
		// Reopen what is there, or give up writing.
		fd, err := unix.Openat(f.dir, f.name+RotatedSuffix, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		f.fd = fd
	}
	unix.Ftruncate(f.fd, 0)
	f.size = 0
}

// Write appends records (whole lines, each shorter than the limit),
// rotating the file at a record boundary when it would grow over the
// limit.
func (f *File) Write(records []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		f.dropped += int64(bytes.Count(records, []byte{'\n'}))
		return
	}
	if f.dropped > 0 {
		note := AppendRecord(nil, time.Now(), Rkt, []byte("rkt: "+strconv.FormatInt(f.dropped, 10)+" records were lost: "+f.lastErr.Error()))
		dropped := f.dropped
		f.dropped = 0
		if !f.write(note) {
			f.dropped += dropped
			f.dropped += int64(bytes.Count(records, []byte{'\n'}))
			return
		}
	}
	f.write(records)
}

// write writes records; false if they were dropped.
func (f *File) write(records []byte) bool {
	for len(records) > 0 {
		room := f.limit - f.size
		chunk := records
		if int64(len(chunk)) > room {
			i := bytes.LastIndexByte(records[:room], '\n')
			if i < 0 {
				if f.size == 0 {
					// A record longer than the limit: cut.
					i = int(room) - 1
				} else {
					f.rotate()
					continue
				}
			}
			chunk = records[:i+1]
		}
		n, err := unix.Write(f.fd, chunk)
		for err == unix.EINTR {
			n, err = unix.Write(f.fd, chunk)
		}
		if err != nil || n != len(chunk) {
			if n > 0 {
				// No torn record: take the part back.
				unix.Ftruncate(f.fd, f.size)
				unix.Seek(f.fd, f.size, 0)
			}
			if err == nil {
				err = unix.ENOSPC
			}
			f.lastErr = err
			f.dropped += int64(bytes.Count(records, []byte{'\n'}))
			return false
		}
		f.size += int64(n)
		records = records[n:]
	}
	return true
}

// Dropped is the count of records lost and not yet noted in the file.
func (f *File) Dropped() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
	if f.dir < 0 {
		return nil
	}
	err := unix.Close(f.dir)
	f.dir = -1
	return err
}
