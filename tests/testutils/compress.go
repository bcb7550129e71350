package testutils

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// newCompressor returns a writer that compresses into w; Close flushes it
// (it does not close w). Every compressor is deterministic.
func newCompressor(c Compression, w io.Writer) (io.WriteCloser, error) {
	switch c {
	case "", CompressionNone:
		return nopCloser{w}, nil
	case CompressionGzip:
		// No name and a zero time in the header keep the output stable.
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case CompressionXz:
		return xz.NewWriter(w)
	case CompressionZstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	case CompressionBzip2:
		return newBzip2Writer(w)
	}
	return nil, fmt.Errorf("unknown compression %q: use none, gzip, bzip2, xz or zstd", c)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// bzip2Writer pipes data through the bzip2 command: the standard library
// only decompresses bzip2.
type bzip2Writer struct {
	io.WriteCloser // the command's stdin
	cmd            *exec.Cmd
	stderr         bytes.Buffer
}

func newBzip2Writer(w io.Writer) (*bzip2Writer, error) {
	path, err := exec.LookPath("bzip2")
	if err != nil {
		return nil, fmt.Errorf("bzip2 compression needs the bzip2 command (apt-get install bzip2): %w", err)
	}
	b := &bzip2Writer{cmd: exec.Command(path, "-c", "-9")}
	b.cmd.Stdout = w
	b.cmd.Stderr = &b.stderr
	if b.WriteCloser, err = b.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("bzip2: %w", err)
	}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bzip2: %w", err)
	}
	return b, nil
}

// Close ends the input and waits for bzip2 to finish writing.
func (b *bzip2Writer) Close() error {
	cerr := b.WriteCloser.Close()
	if err := b.cmd.Wait(); err != nil {
		return fmt.Errorf("bzip2: %w: %s", err, bytes.TrimSpace(b.stderr.Bytes()))
	}
	if cerr != nil {
		return fmt.Errorf("bzip2: close input: %w", cerr)
	}
	return nil
}
