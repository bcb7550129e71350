package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeAuth(t *testing.T, dir, file, content string) {
	t.Helper()
	d := filepath.Join(dir, "auth.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, file), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAuth(t *testing.T) {
	sys, local, user := t.TempDir(), t.TempDir(), t.TempDir()
	writeAuth(t, sys, "a.json", `{"rktKind":"auth","rktVersion":"v1","domains":["example.com","override.example"],"type":"basic","credentials":{"user":"bob","password":"s3:cret"}}`)
	writeAuth(t, local, "b.json", `{"rktKind":"auth","rktVersion":"v1","domains":["override.example","registry.example:5000"],"type":"oauth","credentials":{"token":"tok-local"}}`)
	writeAuth(t, user, "c.json", `{"rktKind":"auth","rktVersion":"v1","domains":["Override.Example"],"type":"oauth","credentials":{"token":"tok-user"}}`)
	writeAuth(t, user, "notes.txt", `not json, and ignored`)

	header, err := LoadAuth(sys, "", local, user, filepath.Join(t.TempDir(), "missing"))
	if err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:s3:cret"))
	for host, want := range map[string]string{
		"example.com":           basic,
		"example.com:8443":      basic,
		"EXAMPLE.COM":           basic,
		"override.example":      "Bearer tok-user",
		"registry.example:5000": "Bearer tok-local",
		"registry.example":      "",
		"sub.example.com":       "",
		"other.org":             "",
	} {
		if got := header(host).Get("Authorization"); got != want {
			t.Errorf("host %s: Authorization %q, want %q", host, got, want)
		}
	}
}

func TestLoadAuthErrors(t *testing.T) {
	for content, want := range map[string]string{
		`{`: "invalid JSON",
		`{"rktKind":"dockerAuth","rktVersion":"v1","domains":["a"],"type":"basic","credentials":{"user":"u","password":"hunter2"}}`: `rktKind is "dockerAuth"`,
		`{"rktKind":"auth","rktVersion":"v2","domains":["a"],"type":"basic","credentials":{"user":"u","password":"hunter2"}}`:       "unsupported rktVersion",
		`{"rktKind":"auth","rktVersion":"v1","domains":[],"type":"basic","credentials":{"user":"u","password":"hunter2"}}`:          "no domains",
		`{"rktKind":"auth","rktVersion":"v1","domains":["a/b"],"type":"basic","credentials":{"user":"u","password":"hunter2"}}`:     "must be a host name",
		`{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"digest","credentials":{}}`:                                     `unknown type "digest"`,
		`{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"basic","credentials":{"token":"tok-secret"}}`:                  "basic credentials need",
		`{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"oauth","credentials":{"user":"u"}}`:                            "oauth credentials need",
		`{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"oauth","credentials":{"token":"tok-secret"},"extra":1}`:        "invalid JSON",
	} {
		dir := t.TempDir()
		writeAuth(t, dir, "x.json", content)
		_, err := LoadAuth(dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.json") {
			t.Errorf("content %s: %v, want an error naming x.json with %q", content, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "tok-secret")) {
			t.Errorf("error leaks credentials: %v", err)
		}
	}

	dir := t.TempDir()
	writeAuth(t, dir, "1.json", `{"rktKind":"auth","rktVersion":"v1","domains":["a.example"],"type":"oauth","credentials":{"token":"t1"}}`)
	writeAuth(t, dir, "2.json", `{"rktKind":"auth","rktVersion":"v1","domains":["a.example"],"type":"oauth","credentials":{"token":"t2"}}`)
	if _, err := LoadAuth(dir); err == nil || !strings.Contains(err.Error(), "configured twice") {
		t.Errorf("duplicate domain in one dir: %v", err)
	}
}
