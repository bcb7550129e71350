package fetch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCleanTmp(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	write := func(name string, mtime time.Time) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	staleKey, freshKey := keyFor("https://a/stale"), keyFor("https://a/fresh")
	write(staleKey+partSuffix, old)
	write(staleKey+metaSuffix, old)
	write(freshKey+partSuffix, time.Now())
	write(freshKey+metaSuffix, old) // belongs to a fresh .part: kept
	write(keyFor("https://a/orphan")+metaSuffix, old)
	write(staleKey+"-123"+finalSuffix, old)
	write(freshKey+"-456"+finalSuffix, time.Now())
	write("unrelated.part", old)
	write("dl-other-file", old)

	// A stale .part locked by a running download is kept too.
	busyURL := "https://a/busy"
	busy := keyFor(busyURL)
	write(busy+partSuffix, old)
	d, err := openDest(tmp, busyURL)
	if err != nil {
		t.Fatal(err)
	}
	if !d.shared {
		t.Fatal("openDest did not lock the .part file")
	}
	if err := os.Chtimes(d.path, old, old); err != nil {
		t.Fatal(err)
	}

	if err := CleanTmp(tmp, time.Hour); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, tmp,
		freshKey+partSuffix, freshKey+metaSuffix, freshKey+"-456"+finalSuffix,
		"unrelated.part", "dl-other-file", busy+partSuffix)

	d.close()
	if err := CleanTmp(tmp, time.Hour); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, tmp,
		freshKey+partSuffix, freshKey+metaSuffix, freshKey+"-456"+finalSuffix,
		"unrelated.part", "dl-other-file")

	if err := CleanTmp(filepath.Join(tmp, "missing"), time.Hour); err != nil {
		t.Errorf("missing dir: %v", err)
	}
}
