package networking

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	badArgsBridge = "rktbadargs0"
	// A bridge network without IgnoreUnknown: the bridge plugin refuses
	// CNI_ARGS it does not know (IP=), in ADD and in DEL alike.
	confBadArgs = `{"cniVersion":"1.0.0","name":"tbad","type":"bridge","bridge":"` + badArgsBridge + `",
		"ipam":{"type":"host-local","subnet":"10.213.7.0/24"}}`
)

// TestRejectedArgsDoNotWedge: a per-network CNI arg the plugin rejects
// fails Setup clearly, and neither the rollback nor a later Teardown is
// stuck on it: DEL is retried without the operator's args, and nothing
// of the pod (interfaces, leases, recorded networks) is left.
func TestRejectedArgsDoNotWedge(t *testing.T) {
	cfg := testConfig(t, needRoot(t), map[string]string{"tbad.conf": confBadArgs})
	t.Cleanup(func() { exec.Command("ip", "link", "del", badArgsBridge).Run() })
	p := startPod(t, "a")
	linksBefore := links(t)
	_, err := Setup(context.Background(), p.uuid, p.podDir, p.netns,
		[]Request{{Name: "tbad", Args: [][2]string{{"IP", "10.213.7.9"}}}}, nil, cfg)
	t.Cleanup(func() { Teardown(context.Background(), p.uuid, p.podDir, cfg) })
	if err == nil {
		t.Fatal("Setup with an arg the bridge plugin rejects succeeded")
	}
	t.Logf("Setup: %v", err)
	if !errors.Is(err, ErrBadArgs) || !strings.Contains(err.Error(), "IgnoreUnknown=1") {
		t.Errorf("Setup error %q does not say the args were rejected and what to do", err)
	}
	if strings.Contains(err.Error(), "undoing") {
		t.Errorf("the rollback failed on the rejected arg too: %v", err)
	}
	if err := Teardown(context.Background(), p.uuid, p.podDir, cfg); err != nil {
		t.Errorf("Teardown after the failed Setup: %v", err)
	}
	p.kill()
	var left []string
	for _, l := range links(t) {
		if !strings.Contains(strings.Join(linksBefore, "\n"), l) && !strings.Contains(l, badArgsBridge) {
			left = append(left, l)
		}
	}
	if len(left) > 0 {
		t.Errorf("interfaces left: %v", left)
	}
	for _, l := range leases(t, cfg.DataDir) {
		if strings.Contains(l, p.uuid) {
			t.Errorf("lease left: %s", l)
		}
	}
	if _, err := os.Stat(filepath.Join(p.podDir, NetInfoFile)); err == nil {
		t.Errorf("net-info.json left after the rollback")
	}

	// The hint works: with IgnoreUnknown=1 the bridge plugin lets host-local
	// take the address.
	b := startPod(t, "b")
	nis, err := setupPod(t, b, cfg, []Request{{Name: "tbad", Args: [][2]string{{"IP", "10.213.7.9"}, {"IgnoreUnknown", "1"}}}}, nil)
	if err != nil || len(nis) == 0 || nis[0].IP != "10.213.7.9" {
		t.Errorf("Setup with IgnoreUnknown=1: %+v, %v", nis, err)
	}
}
