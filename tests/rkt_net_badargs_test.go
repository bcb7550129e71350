package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt/rkt/stage1/stage1test"
)

// TestNetRejectedArgNoWedge: rkt run --net=NET:IP=... on a bridge network
// whose plugin rejects the arg (no IgnoreUnknown) fails with 254 saying
// what to do, and the pod it leaves is collected by the next gc (exit 0),
// with nothing left behind. The network is the test's own (a bridge on
// 10.213.8.0/24 in its --local-config); no traffic is sent.
func TestNetRejectedArgNoWedge(t *testing.T) {
	e := newRealEnv(t)
	hostNet := stage1test.SnapshotHostNet()
	t.Cleanup(hostNet.Restore)
	const bridge = "rktbadargs1"
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	netd := filepath.Join(e.LocalConfig, "net.d")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `{"cniVersion":"1.0.0","name":"tbad","type":"bridge","bridge":"` + bridge + `","ipam":{"type":"host-local","subnet":"10.213.8.0/24"}}`
	if err := os.WriteFile(filepath.Join(netd, "10-tbad.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.Run(insecureImage, "run", "--net=tbad:IP=10.213.8.9", e.img, "--exec=/inspect", "--", "--print-msg=hi")
	if r.Exit != 254 || !strings.Contains(r.Stderr, "IgnoreUnknown=1") {
		t.Fatalf("run with a rejected CNI arg: exit %d, stderr %q; want 254 and the IgnoreUnknown hint", r.Exit, r.Stderr)
	}
	if r := e.Run("gc", "--grace-period=0s"); r.Exit != 0 {
		t.Errorf("gc after the failed run: exit %d\nstdout: %s\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}
	e.requireNoPods()
}
