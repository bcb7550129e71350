package exitstatus

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReserveWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app")
	if err := Reserve(p); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := Read(p); ok {
		t.Error("a reserved file reads as an exit status")
	}
	if st, err := os.Stat(p); err != nil || st.Size() != 0 {
		t.Fatalf("reserved file: %v, %v", st, err)
	}
	if err := Write(p, 137, ReasonOOM); err != nil {
		t.Fatal(err)
	}
	if code, reason, ok := Read(p); !ok || code != 137 || reason != ReasonOOM {
		t.Errorf("Read = %d %q %v", code, reason, ok)
	}
	// A shorter status over a longer one leaves nothing of the old.
	if err := Write(p, 0, ""); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "0\n" {
		t.Errorf("content %q, want \"0\\n\"", data)
	}
	if err := Reserve(p); err == nil {
		t.Error("Reserve over an existing status succeeded")
	}
}

func TestParse(t *testing.T) {
	for data, want := range map[string]struct {
		code   int
		reason string
		ok     bool
	}{
		"0":                    {0, "", true},
		"3\n":                  {3, "", true},
		"137\nout of memory\n": {137, ReasonOOM, true},
		"":                     {0, "", false},
		"x\n":                  {0, "", false},
	} {
		code, reason, ok := Parse(data)
		if code != want.code || reason != want.reason || ok != want.ok {
			t.Errorf("Parse(%q) = %d %q %v, want %+v", data, code, reason, ok, want)
		}
	}
}

func TestOOMKills(t *testing.T) {
	dir := t.TempDir()
	v2 := OOMEventFile(dir, true)
	os.WriteFile(v2, []byte("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"), 0o644)
	if n := OOMKills(v2); n != 2 {
		t.Errorf("v2: %d, want 2", n)
	}
	v1 := OOMEventFile(dir, false)
	os.WriteFile(v1, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"), 0o644)
	if n := OOMKills(v1); n != 1 {
		t.Errorf("v1: %d, want 1", n)
	}
	if n := OOMKills(filepath.Join(dir, "missing")); n != 0 {
		t.Errorf("missing: %d", n)
	}
}

func TestFillKilled(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"done": "0\n", "done-started": "",
		"killed": "", "killed-started": "",
		"never": "", // not started: no status to give
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := FillKilled(dir); len(got) != 1 || got[0] != "killed" {
		t.Errorf("FillKilled = %q, want [killed]", got)
	}
	for app, want := range map[string]string{"done": "0\n", "killed": "137\n" + ReasonPodKilled + "\n", "never": ""} {
		data, _ := os.ReadFile(filepath.Join(dir, app))
		if string(data) != want {
			t.Errorf("status of %s = %q, want %q", app, data, want)
		}
	}
	if got := FillKilled(dir); len(got) != 0 {
		t.Errorf("a second FillKilled recorded %q again", got)
	}
}
