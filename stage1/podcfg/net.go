package podcfg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// Files of the pod directory about the stage1 image and networking,
// relative to it.
const (
	// Stage1RootfsPathFile holds the path of the stage1 image's rootfs,
	// relative to the pod directory (written by stage0; absolute in pods
	// of earlier versions).
	Stage1RootfsPathFile = stage1abi.Stage1RootfsPathFile
	// ResolvConfGenerated is the /etc/resolv.conf stage1 writes from the
	// DNS settings the pod's CNI networks returned
	// (--dns-conf-mode=resolv=default).
	ResolvConfGenerated = RktDir + "/resolv.conf"
	// PluginsDir is where a stage1 image keeps its CNI plugins, relative
	// to its rootfs; on the host, /PluginsDir is searched too.
	PluginsDir = "usr/lib/rkt/plugins/net"
	// NetDownFile, private to stage1, says that the pod's networks were
	// torn down completely (by the run entrypoint when the pod exited, or
	// by gc): gc need not run the plugins again.
	NetDownFile = RktDir + "/net-down"
)

// MarkNetDown records that the pod's networks were torn down.
func MarkNetDown(podDir string) error {
	p := filepath.Join(podDir, NetDownFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("record that the pod's networks are torn down: %w", err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		return fmt.Errorf("record that the pod's networks are torn down: %w", err)
	}
	return nil
}

// DataDir returns rkt's data directory (--dir) of the pod directory
// podDir, which is <data dir>/pods/<phase>/<uuid>: three levels up.
func DataDir(podDir string) (string, error) {
	podDir = filepath.Clean(podDir)
	phaseDir := filepath.Dir(podDir)
	podsDir := filepath.Dir(phaseDir)
	if !filepath.IsAbs(podDir) || filepath.Base(podsDir) != "pods" {
		return "", fmt.Errorf("pod directory %s is not <data dir>/pods/<phase>/<uuid>: run stage1 from rkt, in the pod's directory", podDir)
	}
	return filepath.Dir(podsDir), nil
}

// Stage1Rootfs returns the stage1 image's rootfs as stage0 recorded it in
// the pod directory, or "" if it did not.
func Stage1Rootfs(podDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(podDir, Stage1RootfsPathFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the stage1 image's location: %w", err)
	}
	root := strings.TrimSpace(string(data))
	if root != "" && !filepath.IsAbs(root) {
		root = filepath.Join(podDir, root)
	}
	return root, nil
}

// NetConfig returns the networking configuration of the pod in podDir
// (run and gc use the same): networks from <localConfig>/net.d, IPAM
// leases below the host-wide <host dir>/networks (networking.HostDir:
// /run/rkt, the same for every data dir), plugins searched in
// <localConfig>/net.d, /usr/lib/rkt/plugins/net, then the stage1 image's
// <rootfs>/usr/lib/rkt/plugins/net. logf gets the steps and timings.
func NetConfig(podDir, localConfig string, logf func(string, ...any)) (networking.Config, error) {
	if _, err := DataDir(podDir); err != nil {
		return networking.Config{}, err
	}
	host := networking.HostDir()
	cfg := networking.Config{LocalConfig: localConfig, DataDir: networking.LeaseDir(host), HostDir: host, Logf: logf}
	if d := cfg.NetDir(); d != "" {
		cfg.PluginDirs = append(cfg.PluginDirs, d)
	}
	cfg.PluginDirs = append(cfg.PluginDirs, "/"+PluginsDir)
	root, err := Stage1Rootfs(podDir)
	if err != nil {
		return networking.Config{}, err
	}
	if root != "" {
		cfg.PluginDirs = append(cfg.PluginDirs, filepath.Join(root, PluginsDir))
	}
	return cfg, nil
}
