package stage1test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/tests/testutils"
)

// PluginsDir is where a stage1 rootfs holds its CNI plugins.
const PluginsDir = "usr/lib/rkt/plugins/net"

// BuildPlugins builds the CNI plugins the stage1 image ships
// (networking/build-plugins.sh) into <rootfs>/usr/lib/rkt/plugins/net,
// rootfs being a stage1 rootfs such as the directory Build returns.
func BuildPlugins(rootfs string) error {
	root, err := testutils.RepoRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "networking", "build-plugins.sh"), filepath.Join(rootfs, PluginsDir))
	if _, err := exec.LookPath("go"); err != nil {
		cmd.Env = append(os.Environ(), "GO=/usr/local/go/bin/go")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the CNI plugins: %w\n%s", err, out)
	}
	return nil
}

// HostNet is testutils.HostNet: the host's shared network state, to
// snapshot before networks are set up and restore afterwards.
type HostNet = testutils.HostNet

// SnapshotHostNet records the host's shared network state.
func SnapshotHostNet() HostNet { return testutils.SnapshotHostNet() }

// HostVeths returns the host-side interfaces of the networks recorded in
// the pod's net-info.json.
func HostVeths(podDir string) []string {
	nis, _ := networking.LoadNetInfo(podDir)
	var out []string
	for _, ni := range nis {
		var r struct {
			Interfaces []struct {
				Name    string `json:"name"`
				Sandbox string `json:"sandbox"`
			} `json:"interfaces"`
		}
		if json.Unmarshal(ni.Result, &r) != nil {
			continue
		}
		for _, i := range r.Interfaces {
			if i.Sandbox == "" && i.Name != "" {
				out = append(out, i.Name)
			}
		}
	}
	return out
}

// NetTraces lists what is left on the host of the networks of pod uuid:
// firewall rules naming it (the plugins put the pod's ID in their rules'
// comments), the host interfaces veths that still exist, and IPAM leases
// (under dataDir and the host-wide directory) and host port claims naming
// it.
func NetTraces(uuid, dataDir string, veths []string) []string {
	var out []string
	for _, c := range [][]string{{"iptables-save"}, {"nft", "list", "ruleset"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		data, err := exec.Command(c[0], c[1:]...).Output()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", c[0], err))
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, uuid) {
				out = append(out, c[0]+": "+strings.TrimSpace(l))
			}
		}
	}
	for _, v := range veths {
		if _, err := net.InterfaceByName(v); err == nil {
			out = append(out, "interface "+v)
		}
	}
	// Leases (built-in networks: host-wide; older pods: in the data dir)
	// and host port claims naming the pod.
	for _, dir := range []string{filepath.Join(dataDir, "networks"), networking.LeaseDir(networking.HostDir()), filepath.Join(networking.HostDir(), "ports")} {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || (net.ParseIP(info.Name()) == nil && filepath.Base(filepath.Dir(p)) != "ports") {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), uuid) {
				out = append(out, "lease or port claim "+p)
			}
			return nil
		})
	}
	return out
}

// WaitNoNetTraces waits up to timeout for NetTraces to find nothing (the
// kernel removes a dead pod's veths asynchronously) and returns what is
// left.
func WaitNoNetTraces(uuid, dataDir string, veths []string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		left := NetTraces(uuid, dataDir, veths)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// removeFirewallTraces deletes the iptables rules naming pod uuid, and
// the per-pod chains they jump to: the harness's last resort when gc
// failed to, so that a failing test does not leave rules on the host.
func removeFirewallTraces(uuid string) error {
	data, err := exec.Command("iptables-save").Output()
	if err != nil {
		return fmt.Errorf("iptables-save: %w", err)
	}
	var in strings.Builder
	table := ""
	var dels, chains []string
	flush := func() {
		if table != "" && len(dels) > 0 {
			in.WriteString("*" + table + "\n")
			for _, d := range dels {
				in.WriteString(d + "\n")
			}
			for _, c := range chains {
				in.WriteString("-F " + c + "\n-X " + c + "\n")
			}
			in.WriteString("COMMIT\n")
		}
		dels, chains = nil, nil
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			flush()
			table = l[1:]
		case strings.HasPrefix(l, "-A ") && strings.Contains(l, uuid):
			dels = append(dels, "-D "+l[3:])
			f := strings.Fields(l)
			if t := f[len(f)-1]; f[len(f)-2] == "-j" && strings.HasPrefix(t, "CNI-") && !strings.HasPrefix(t, "CNI-HOSTPORT-") && !seen[table+t] {
				seen[table+t] = true
				chains = append(chains, t)
			}
		}
	}
	flush()
	if in.Len() == 0 {
		return nil
	}
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, out)
	}
	return nil
}
