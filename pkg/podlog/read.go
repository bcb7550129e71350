package podlog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Reader reads an app's records: first those of the rotated file, then
// those of the current one, and on each later Next what was written
// since, across rotations (a file rotated twice between two calls is
// missed). It is not safe for concurrent use.
type Reader struct {
	path    string
	f       *os.File
	ino     uint64
	partial []byte
	buf     []byte
	started bool
}

// NewReader returns a reader of the log file name in dir.
func NewReader(dir, name string) *Reader {
	return &Reader{path: filepath.Join(dir, name)}
}

// Close closes the file being read.
func (r *Reader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// Next returns the complete records written since the last call.
func (r *Reader) Next() ([]Record, error) {
	var out []Record
	if !r.started {
		r.started = true
		data, err := os.ReadFile(r.path + RotatedSuffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		out = parseAll(data, out)
	}
	if r.f == nil {
		if err := r.open(); err != nil {
			return out, err
		}
		if r.f == nil {
			return out, nil
		}
	}
	var err error
	if out, err = r.drain(out); err != nil {
		return out, err
	}
	// Rotated meanwhile: the rest of the old file, then the new one.
	if fi, serr := os.Stat(r.path); serr == nil && inode(fi) != r.ino {
		if out, err = r.drain(out); err != nil {
			return out, err
		}
		r.f.Close()
		r.f, r.partial = nil, nil
		if err := r.open(); err != nil || r.f == nil {
			return out, err
		}
		return r.drain(out)
	}
	return out, nil
}

func (r *Reader) open() error {
	f, err := os.Open(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.ino = f, inode(fi)
	return nil
}

// drain reads r.f to its end.
func (r *Reader) drain(out []Record) ([]Record, error) {
	if r.buf == nil {
		r.buf = make([]byte, 64<<10)
	}
	for {
		n, err := r.f.Read(r.buf)
		r.partial = append(r.partial, r.buf[:n]...)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			return out, err
		}
	}
	i := bytes.LastIndexByte(r.partial, '\n')
	if i < 0 {
		return out, nil
	}
	out = parseAll(r.partial[:i+1], out)
	r.partial = append(r.partial[:0], r.partial[i+1:]...)
	return out, nil
}

// parseAll appends the records of data (whole lines); lines that are
// no record are skipped.
func parseAll(data []byte, out []Record) []Record {
	for len(data) > 0 {
		line := data
		i := bytes.IndexByte(data, '\n')
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if rec, ok := ParseRecord(string(line)); ok {
			out = append(out, rec)
		}
	}
	return out
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
