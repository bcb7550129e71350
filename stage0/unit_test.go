package stage0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
)

func TestQuoteExecArg(t *testing.T) {
	for in, want := range map[string]string{
		"--net=host":            "--net=host",
		"example.com/etcd:v3.4": "example.com/etcd:v3.4",
		"":                      `""`,
		"two words":             `"two words"`,
		`say "hi"`:              `"say \"hi\""`,
		`back\slash`:            `"back\\slash"`,
		"50%":                   "50%%",
		"$HOME":                 "$$HOME",
		"${X}":                  `"$${X}"`,
		";":                     `\;`,
		"a;b":                   `"a;b"`,
		"line\nbreak\t":         `"line\x0abreak\x09"`,
		"'single'":              `"'single'"`,
		"-c":                    "-c",
	} {
		if got := QuoteExecArg(in); got != want {
			t.Errorf("QuoteExecArg(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAbsRunArgs(t *testing.T) {
	cwd := t.TempDir()
	if err := os.WriteFile(filepath.Join(cwd, "app.aci"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := AbsRunArgs([]string{
		"--net=host", "--set-env-file=env", "--pod-manifest", "pm.json", "--interactive",
		"app.aci", "--signature", "app.aci.asc", "--exec", "bin/sh", "--", "rel/arg", "app.aci", "---",
		"example.com/x:1", "--uuid-file-save=/abs/u",
	}, cwd)
	want := []string{
		"--net=host", "--set-env-file=" + cwd + "/env", "--pod-manifest", cwd + "/pm.json", "--interactive",
		cwd + "/app.aci", "--signature", cwd + "/app.aci.asc", "--exec", "bin/sh", "--", "rel/arg", "app.aci", "---",
		"example.com/x:1", "--uuid-file-save=/abs/u",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("AbsRunArgs:\n got %q\nwant %q", got, want)
	}
}

func TestWriteUnit(t *testing.T) {
	var b strings.Builder
	err := WriteUnit(&b, UnitOptions{Rkt: "/usr/bin/rkt", Description: "web 100%", Args: RunArgs{
		Global: []string{"--dir=/srv/rkt"},
		Run:    []string{"--interactive", "img", "--exec", "/bin/sh", "--", "-c", "echo $HOME", "--interactive"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	u := b.String()
	for _, want := range []string{
		"\nDescription=web 100%%\n",
		"\nExecStart=/usr/bin/rkt --dir=/srv/rkt run --pull-policy=new img --exec /bin/sh -- -c \"echo $$HOME\" --interactive\n",
		"\nExecStopPost=/usr/bin/rkt --dir=/srv/rkt gc --mark-only\n",
		"\nType=notify\n", "\nDelegate=yes\n", "\nKillMode=mixed\n", "\nSuccessExitStatus=143\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	b.Reset()
	if err := WriteUnit(&b, UnitOptions{Rkt: "/usr/bin/rkt", Args: RunArgs{Run: []string{"--pull-policy=update", "img"}}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "--pull-policy=new") || !strings.Contains(b.String(), " run --pull-policy=update img\n") {
		t.Errorf("a given --pull-policy is not kept:\n%s", b.String())
	}
	if err := WriteUnit(&b, UnitOptions{Rkt: "rkt"}); err == nil {
		t.Error("a relative rkt path was accepted")
	}
}

func TestRecordRunArgs(t *testing.T) {
	pm := schema.BlankPodManifest()
	ra := &RunArgs{Global: []string{"--dir=/d"}, Run: []string{"--net=host", "img", "--", "a b"}}
	if err := recordRunArgs(pm, ra); err != nil {
		t.Fatal(err)
	}
	v, ok := pm.Annotations.Get(AnnoRunArgs)
	if !ok || !strings.Contains(v, `"a b"`) {
		t.Errorf("annotation %s = %q, %v", AnnoRunArgs, v, ok)
	}
}
