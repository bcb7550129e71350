package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stubArgs returns the run entrypoint's arguments the stub stage1 printed.
func stubArgs(t *testing.T, stdout string) []string {
	t.Helper()
	for _, l := range strings.Split(stdout, "\n") {
		if a, ok := strings.CutPrefix(l, "stub-stage1: args="); ok {
			return strings.Fields(a)
		}
	}
	t.Fatalf("the stub stage1 printed no arguments: %q", stdout)
	return nil
}

func hasArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// TestPreparedOptions: the --net, --hostname, --ipc and --dns* given to
// rkt prepare reach stage1 when the pod is run with run-prepared; those
// given to run-prepared (which takes --dns* and --hosts-entry too)
// replace them.
func TestPreparedOptions(t *testing.T) {
	e := newPodEnv(t)
	uuid := mustUUID(t, e.MustRun(e.podArgs("prepare", nil, "--net=none", "--hostname=prep-host", "--ipc=private", "--dns=10.1.2.3")...))
	r := e.Run("run-prepared", uuid)
	args := stubArgs(t, r.Stdout)
	for _, want := range []string{"--net=none", "--hostname=prep-host", "--ipc=private", "--dns-conf-mode=resolv=stage0,hosts=default"} {
		if !hasArg(args, want) {
			t.Errorf("run-prepared of a pod prepared with it did not pass %s to stage1: %q", want, args)
		}
	}

	uuid = mustUUID(t, e.MustRun(e.podArgs("prepare", nil, "--net=none", "--hostname=prep-host", "--dns=10.1.2.3")...))
	r = e.Run("run-prepared", "--hostname=run-host", "--hosts-entry=10.0.0.9=db", uuid)
	args = stubArgs(t, r.Stdout)
	for _, want := range []string{"--net=none", "--hostname=run-host", "--dns-conf-mode=resolv=default,hosts=stage0"} {
		if !hasArg(args, want) {
			t.Errorf("run-prepared --hostname --hosts-entry did not pass %s to stage1: %q", want, args)
		}
	}
	hosts, err := os.ReadFile(filepath.Join(e.podsPhaseDir("run"), uuid, "stage1/rootfs/etc/rkt-hosts"))
	if err != nil || !strings.Contains(string(hosts), "10.0.0.9\tdb") && !strings.Contains(string(hosts), "10.0.0.9 db") || !strings.Contains(string(hosts), "run-host") {
		t.Errorf("the pod's hosts file after run-prepared --hosts-entry: %q, %v", hosts, err)
	}

	uuid = mustUUID(t, e.MustRun(e.podArgs("prepare", nil)...))
	e.MustFail(254, "not a host name", "run-prepared", "--hostname=bad_name", uuid)
	e.MustFail(254, "--hosts-entry", "run-prepared", "--hosts-entry=nonsense", uuid)
	e.MustFail(254, "not a host name", e.podArgs("prepare", nil, "--hostname=-x")...)
}

// TestExportUUIDFile: rkt export takes the pod from --uuid-file, as the
// other pod commands do.
func TestExportUUIDFile(t *testing.T) {
	e := newPodEnv(t)
	f := filepath.Join(t.TempDir(), "uuid")
	e.Run(e.podArgs("run", nil, "--uuid-file-save="+f)...)
	out := filepath.Join(t.TempDir(), "out.aci")
	e.MustRun("export", "--uuid-file="+f, out)
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Errorf("export --uuid-file wrote nothing: %v", err)
	}
	e.MustFail(254, "not both", "export", "--uuid-file="+f, "ffffffff", out)
	e.MustFail(254, "--uuid-file", "export", out)
}
