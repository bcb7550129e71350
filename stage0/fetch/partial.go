package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	filePrefix   = "dl-"
	partSuffix   = ".part"
	metaSuffix   = ".meta"
	finalSuffix  = ".download"
	lockAttempts = 3
)

// partMeta is the JSON sidecar of a .part file: which URL and which version
// (ETag) of it the partial bytes belong to.
type partMeta struct {
	URL  string `json:"url"`
	ETag string `json:"etag"`
}

// dest is the file a download is written to: either the shared, locked,
// resumable dl-<key>.part, or a private temporary file.
type dest struct {
	dir    string
	key    string // dl-<first 32 hex digits of sha256(url)>
	rawURL string
	f      *os.File
	path   string
	shared bool   // f is the locked dl-<key>.part
	offset int64  // bytes in f that a range request may continue
	etag   string // ETag of the bytes in f; "" when they cannot be resumed
	closed bool
}

// keyFor names the partial download files of rawURL.
func keyFor(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return filePrefix + hex.EncodeToString(sum[:])[:32]
}

// openDest opens and locks dir/dl-<key>.part, or, when another process owns
// it, creates a private temporary file.
func openDest(dir, rawURL string) (*dest, error) {
	d := &dest{dir: dir, key: keyFor(rawURL), rawURL: rawURL}
	partPath := filepath.Join(dir, d.key+partSuffix)
	for range lockAttempts {
		f, err := os.OpenFile(partPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening a partial download in %s (does the directory exist and is it writable?): %w", dir, err)
		}
		if !tryLock(f) {
			f.Close()
			break
		}
		// The previous owner may have renamed or removed the file between
		// our open and our lock: then the lock protects nothing.
		if sameFile(f, partPath) {
			d.f, d.path, d.shared = f, partPath, true
			d.loadResume()
			return d, nil
		}
		f.Close()
	}
	f, err := os.CreateTemp(dir, d.key+"-*"+finalSuffix)
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	d.f, d.path = f, f.Name()
	return d, nil
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

func (d *dest) metaPath() string { return filepath.Join(d.dir, d.key+metaSuffix) }

// loadResume reads the sidecar and decides whether the bytes in the .part
// file can be continued.
func (d *dest) loadResume() {
	b, err := os.ReadFile(d.metaPath())
	if err != nil {
		return
	}
	var m partMeta
	if json.Unmarshal(b, &m) != nil || m.URL != d.rawURL || !resumableETag(m.ETag) {
		return
	}
	st, err := d.f.Stat()
	if err != nil || st.Size() == 0 {
		return
	}
	d.offset, d.etag = st.Size(), m.ETag
}

// resumableETag reports whether etag may be used in If-Range: it must be a
// strong validator (RFC 9110 §13.1.5).
func resumableETag(etag string) bool {
	return etag != "" && !strings.HasPrefix(etag, "W/")
}

// resumePoint returns the offset and ETag to ask the server to continue
// from; offset 0 means a full download.
func (d *dest) resumePoint() (int64, string) {
	if !d.shared || d.etag == "" {
		return 0, ""
	}
	return d.offset, d.etag
}

// forgetResume makes the next request a full download.
func (d *dest) forgetResume() { d.offset = 0 }

// restart empties the file for a full download of the version etag, and
// records etag in the sidecar so an interrupted transfer can be resumed.
func (d *dest) restart(etag string) error {
	if err := d.f.Truncate(0); err != nil {
		return fmt.Errorf("truncating %s: %w", d.path, err)
	}
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding %s: %w", d.path, err)
	}
	d.offset, d.etag = 0, ""
	if !d.shared {
		return nil
	}
	if !resumableETag(etag) {
		if err := os.Remove(d.metaPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", d.metaPath(), err)
		}
		return nil
	}
	b, err := json.Marshal(partMeta{URL: d.rawURL, ETag: etag})
	if err != nil {
		return fmt.Errorf("encoding %s: %w", d.metaPath(), err)
	}
	if err := os.WriteFile(d.metaPath(), b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", d.metaPath(), err)
	}
	d.etag = etag
	return nil
}

// append positions the file to continue at offset.
func (d *dest) append(offset int64) error {
	if err := d.f.Truncate(offset); err != nil {
		return fmt.Errorf("truncating %s: %w", d.path, err)
	}
	if _, err := d.f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("seeking in %s: %w", d.path, err)
	}
	return nil
}

// resumable reports whether the file holds bytes a later fetch may continue.
func (d *dest) resumable() bool {
	if !d.shared || d.etag == "" {
		return false
	}
	st, err := d.f.Stat()
	return err == nil && st.Size() > 0
}

// commit closes the finished download and returns its unique final path.
// On error the caller still calls fail.
func (d *dest) commit() (string, error) {
	if !d.shared {
		if err := d.close(); err != nil {
			return "", fmt.Errorf("closing %s: %w", d.path, err)
		}
		return d.path, nil
	}
	// Reserve a unique name, then move the .part over it while still
	// holding the lock, so no other process can take the .part meanwhile.
	tmp, err := os.CreateTemp(d.dir, d.key+"-*"+finalSuffix)
	if err != nil {
		return "", fmt.Errorf("creating a file name in %s: %w", d.dir, err)
	}
	final := tmp.Name()
	tmp.Close()
	if err := os.Rename(d.path, final); err != nil {
		os.Remove(final)
		return "", fmt.Errorf("renaming %s to %s: %w", d.path, final, err)
	}
	os.Remove(d.metaPath())
	d.close() // releases the lock; the data is already complete
	return final, nil
}

// fail is called when the download did not complete: it keeps a resumable
// .part and its sidecar, and removes anything else.
func (d *dest) fail() {
	if d.shared && d.resumable() {
		d.close()
		return
	}
	d.discard()
}

// discard removes the file (and sidecar) and releases the lock.
func (d *dest) discard() {
	os.Remove(d.path)
	if d.shared {
		os.Remove(d.metaPath())
	}
	d.close()
}

// close closes f once (releasing the lock on a shared .part).
func (d *dest) close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	return d.f.Close()
}

// CleanTmp removes, from dir, partial downloads and finished downloads left
// by this package whose files were last modified more than olderThan ago.
// Partial downloads that a running process holds locked are kept. Finished
// downloads belong to the caller once Download returns, so olderThan should
// exceed the time a caller may take to import one (an hour or a day).
// A missing dir is not an error.
func CleanTmp(dir string, olderThan time.Duration) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning stale downloads: reading %s: %w", dir, err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, filePrefix) {
			continue
		}
		p := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, partSuffix):
			errs = append(errs, cleanPart(p, cutoff))
		case strings.HasSuffix(name, metaSuffix):
			part := strings.TrimSuffix(p, metaSuffix) + partSuffix
			if _, err := os.Lstat(part); errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, removeIfOlder(p, cutoff))
			}
		case strings.HasSuffix(name, finalSuffix):
			errs = append(errs, removeIfOlder(p, cutoff))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleaning stale downloads in %s: %w", dir, err)
	}
	return nil
}

// cleanPart removes an unlocked stale .part file and its sidecar.
func cleanPart(p string, cutoff time.Time) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", p, err)
	}
	defer f.Close()
	if !tryLock(f) || !sameFile(f, p) {
		return nil // in use, or already renamed by its owner
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", p, err)
	}
	if !st.ModTime().Before(cutoff) {
		return nil
	}
	meta := strings.TrimSuffix(p, partSuffix) + metaSuffix
	if err := os.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", meta, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}

func removeIfOlder(p string, cutoff time.Time) error {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", p, err)
	}
	if !st.ModTime().Before(cutoff) {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}
