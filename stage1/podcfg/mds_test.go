package podcfg

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/pkg/stage1abi"
)

func appEnv(t *testing.T, dir string, o *Options) (string, error) {
	t.Helper()
	p, err := Load(context.Background(), dir, o)
	if err != nil {
		return "", err
	}
	return strings.Join(p.Apps[0].Launch.Env, " "), nil
}

func TestMetadataURL(t *testing.T) {
	dir := writePod(t, twoApps, nil)
	env, err := appEnv(t, dir, opts(t, "--net=host"))
	if err != nil || strings.Contains(env, stage1abi.MetadataURLEnv) {
		t.Errorf("unregistered pod: env %s, %v; want no %s", env, err, stage1abi.MetadataURLEnv)
	}
	tok := strings.Repeat("ab", 16)
	if err := os.WriteFile(filepath.Join(dir, stage1abi.MDSTokenFile), []byte(tok+"\n18112\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err = appEnv(t, dir, opts(t, "--net=host"))
	if want := "AC_METADATA_URL=http://127.0.0.1:18112/" + tok; err != nil || !strings.Contains(env, want) {
		t.Errorf("--net=host: env %s, %v; want %s", env, err, want)
	}
	if env, err = appEnv(t, dir, opts(t, "--net=none")); err != nil || strings.Contains(env, stage1abi.MetadataURLEnv) {
		t.Errorf("--net=none: env %s, %v; want no URL", env, err)
	}
	for _, bad := range []string{tok + "\n", tok + "\n0\n", tok + "\nx\n"} {
		os.WriteFile(filepath.Join(dir, stage1abi.MDSTokenFile), []byte(bad), 0o600)
		if _, err := appEnv(t, dir, opts(t, "--net=host")); err == nil || !strings.Contains(err.Error(), stage1abi.MDSTokenFile) {
			t.Errorf("token file %q: %v, want an error naming it", bad, err)
		}
	}
}
