package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGenerateSystemd: rkt generate systemd UUID writes the unit that
// rkt generate systemd with the pod's flags writes (rkt prepare recorded
// them), with each argument quoted for ExecStart=, and systemd-analyze
// verify accepts it.
func TestGenerateSystemd(t *testing.T) {
	e := newPodEnv(t)
	flags := []string{"--set-env=GREETING=two words, 100% $HOME", "--hostname=gen-test"}
	uuid := mustUUID(t, e.MustRun(e.podArgs("prepare", nil, flags...)...))
	fromPod := e.MustRun("generate", "systemd", "--rkt=/usr/bin/rkt", uuid)
	// podArgs: --insecure-options=image VERB flags... image
	pa := e.podArgs("", nil, flags...)
	direct := e.MustRun(append([]string{pa[0], "generate", "systemd", "--rkt=/usr/bin/rkt"}, pa[2:]...)...)
	if fromPod != direct {
		t.Errorf("the unit of pod %s:\n%s\ndiffers from the unit of its flags:\n%s", uuid, fromPod, direct)
	}
	var start string
	for _, l := range strings.Split(fromPod, "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			start = l
		}
	}
	for _, want := range []string{
		"ExecStart=/usr/bin/rkt --dir=" + e.Dir + " ",
		" --insecure-options=image ",
		" run --pull-policy=new ",
		` "--set-env=GREETING=two words, 100%% $$HOME" `,
		" --stage1-path=" + e.stage1 + " ",
		" " + e.app,
	} {
		if !strings.Contains(start, want) {
			t.Errorf("ExecStart lacks %q: %s", want, start)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is missing: install the systemd package (scripts/deps does)")
	}
	// verify needs ExecStart's binary: point the unit at the rkt under test.
	unit := filepath.Join(t.TempDir(), "rkt-gen-test.service")
	e.MustRun(append([]string{"generate", "systemd", "--rkt=" + e.Bin, "--output=" + unit}, uuid)...)
	// Documentation= names rkt's man pages: man finds them in dist/man.
	_, self, _, _ := runtime.Caller(0)
	manpath := t.TempDir()
	if err := os.Symlink(filepath.Join(filepath.Dir(self), "..", "dist", "man"), filepath.Join(manpath, "man1")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", unit)
	cmd.Env = append(os.Environ(), "MANPATH="+manpath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("systemd-analyze verify of the generated unit: %v\n%s", err, out.String())
	}
	e.MustFail(254, "already exists", "generate", "systemd", "--output="+unit, uuid)
}
