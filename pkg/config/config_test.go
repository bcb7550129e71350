package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, kind, name, body string) {
	t.Helper()
	p := filepath.Join(dir, kind+".d", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMergesInOrder(t *testing.T) {
	sys, local, user := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, sys, "paths", "a.json", `{"rktKind":"paths","rktVersion":"v1","data":"/sys/data","stage1-images":"/sys/s1"}`)
	write(t, local, "paths", "a.json", `{"rktKind":"paths","rktVersion":"v1","data":"/local/data"}`)
	write(t, sys, "auth", "a.json", `{"rktKind":"auth","rktVersion":"v1","domains":["a.com","b.com"],"type":"basic","credentials":{"user":"u","password":"p"}}`)
	write(t, user, "auth", "a.json", `{"rktKind":"auth","rktVersion":"v1","domains":["b.com"],"type":"oauth","credentials":{"token":"tok"}}`)
	c, err := Load(sys, local, user)
	if err != nil {
		t.Fatal(err)
	}
	if c.Paths.Data != "/local/data" || c.Paths.Stage1Images != "/sys/s1" {
		t.Errorf("paths = %+v", c.Paths)
	}
	if got := c.Header("a.com").Get("Authorization"); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("a.com auth = %q", got)
	}
	if got := c.Header("B.com").Get("Authorization"); got != "Bearer tok" {
		t.Errorf("b.com auth = %q (user config should override)", got)
	}
	if c.Header("c.com") != nil {
		t.Error("c.com has credentials")
	}
	if c.Auth["a.com"].Authorization != "" {
		t.Error("credentials must not be shown unless asked for")
	}
	if got := c.WithSecrets().Auth["a.com"].Authorization; !strings.HasPrefix(got, "Basic ") {
		t.Errorf("WithSecrets shows %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, body := range map[string]string{
		"bad json":    `{`,
		"wrong kind":  `{"rktKind":"stage1","rktVersion":"v1"}`,
		"bad version": `{"rktKind":"paths","rktVersion":"v9"}`,
	} {
		dir := t.TempDir()
		write(t, dir, "paths", "x.json", body)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "x.json") {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
}
