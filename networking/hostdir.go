package networking

import (
	"os"
	"path/filepath"
)

// State that must be the same for every rkt on the host, whatever its
// data directory (--dir), lives below one host-wide directory: the
// built-in networks' IP leases (two data directories must never hand
// out one address twice), the port claims (a host port is forwarded to
// one pod at a time) and the locks that serialize the shared firewall
// rules. It is under /run: all of it describes network state that does
// not survive a reboot.
const (
	// DefaultHostDir is the host-wide directory.
	DefaultHostDir = "/run/rkt"
	// HostDirEnv names the environment variable that moves it elsewhere
	// (tests that must not share state with the host's pods; every rkt
	// on one host must see the same value, so do not set it otherwise).
	HostDirEnv = "RKT_HOST_STATE_DIR"
)

// HostDir returns the host-wide state directory: $RKT_HOST_STATE_DIR if
// set, else /run/rkt.
func HostDir() string {
	if d := os.Getenv(HostDirEnv); d != "" {
		return d
	}
	return DefaultHostDir
}

// LeaseDir returns where host-local keeps the leases of networks that do
// not set ipam.dataDir: <host dir>/networks.
func LeaseDir(hostDir string) string { return filepath.Join(hostDir, "networks") }

// hostDir is c.HostDir, else HostDir().
func (c *Config) hostDir() string {
	if c.HostDir != "" {
		return c.HostDir
	}
	return HostDir()
}
