package tarx_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/pkg/tarx"
)

// TestHolesStayHoles: runs of zero blocks are seeked over, not written:
// a 64 MiB file of zeros takes no blocks, a file with data between holes
// keeps its content and length, and DiskUsage counts what is allocated.
func TestHolesStayHoles(t *testing.T) {
	f := newFixture(t, tarx.DefaultLimits, false)
	const big = 64 << 20
	zeros := entry{"zeros", file("zeros", 0o644, "").hdr, ""}
	zeros.hdr.Size = big
	if err := f.ex.Add("zeros", &zeros.hdr, &zeroReader{n: big}); err != nil {
		t.Fatal(err)
	}
	mixed := strings.Repeat("\x00", 3*4096) + "data" + strings.Repeat("\x00", 8192+100) + "tail" + strings.Repeat("\x00", 5000)
	f.mustAdd(t, file("mixed", 0o644, mixed), file("small", 0o644, "x"))
	digest, err := f.ex.Finish()
	if err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(f.root, "zeros"))
	if st.Size != big || st.Blocks > 8 {
		t.Errorf("zeros: size %d, %d blocks; want %d bytes in no blocks", st.Size, st.Blocks, big)
	}
	got, err := os.ReadFile(filepath.Join(f.root, "mixed"))
	if err != nil || !bytes.Equal(got, []byte(mixed)) {
		t.Errorf("mixed: content differs (%d bytes, want %d): %v", len(got), len(mixed), err)
	}
	if st := lstat(t, filepath.Join(f.root, "mixed")); st.Blocks*512 >= int64(len(mixed)) {
		t.Errorf("mixed: %d blocks for %d bytes: its holes were written", st.Blocks, len(mixed))
	}
	if u := f.ex.DiskUsage(); u <= 0 || u > 1<<20 {
		t.Errorf("DiskUsage = %d, want the few blocks allocated", u)
	}
	// The tree digest covers the content, holes read as zeros.
	if d, err := tarx.Digest(f.root); err != nil || d != digest {
		t.Errorf("Digest = %s, %v; Finish said %s", d, err, digest)
	}
}

type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}
