package networking

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefuseRangeTheHostUses: a net.d network whose range overlaps an
// address and route the host has (on a bridge of the test's) is
// refused before anything is set up.
func TestRefuseRangeTheHostUses(t *testing.T) {
	plugins := needRoot(t)
	const dummy = "rktovl0" // a bridge: this kernel may lack the dummy driver
	exec.Command("ip", "link", "del", dummy).Run()
	if out, err := exec.Command("ip", "link", "add", dummy, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", dummy).Run() })
	for _, c := range [][]string{{"addr", "add", "198.18.77.1/24", "dev", dummy}, {"link", "set", dummy, "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, out)
		}
	}
	for subnet, want := range map[string]string{
		"198.18.77.0/24":  "overlaps the host's route 198.18.77.0/24 dev " + dummy,
		"198.18.0.0/16":   "overlaps the host's route 198.18.77.0/24 dev " + dummy,
		"198.18.77.64/26": "overlaps the host's route 198.18.77.0/24 dev " + dummy,
	} {
		conf := `{"cniVersion":"1.0.0","name":"ovl","type":"ptp","ipam":{"type":"host-local","ranges":[[{"subnet":"` + subnet + `"}]]}}`
		cfg := testConfig(t, plugins, map[string]string{"ovl.conf": conf})
		p := startPod(t, "ovl")
		_, err := setupPod(t, p, cfg, []Request{{Name: "ovl"}}, nil)
		if !errors.Is(err, ErrRouteConflict) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("subnet %s: %v, want ErrRouteConflict with %q", subnet, err, want)
		}
		if _, err := os.Stat(filepath.Join(p.podDir, NetInfoFile)); !os.IsNotExist(err) {
			t.Errorf("subnet %s: net-info.json after the refusal: %v", subnet, err)
		}
		if ls := leases(t, cfg.DataDir); len(ls) > 0 {
			t.Errorf("subnet %s: leases %v", subnet, ls)
		}
	}
}
