package podcfg

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rkt/rkt/pkg/stage1abi"
)

// metadataURL returns the apps' AC_METADATA_URL, http://HOST:PORT/TOKEN,
// when stage0 registered the pod with the metadata service (it wrote the
// token and port to stage1abi.MDSTokenFile), else "". HOST is where the
// pod reaches the host: loopback with --net=host, the host's address on
// the pod's first network otherwise; a pod with --net=none reaches no
// service and gets no URL.
func metadataURL(dir string, opts *Options) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, stage1abi.MDSTokenFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the pod's metadata service token: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return "", fmt.Errorf("%s: want the token and the port, got %d fields", stage1abi.MDSTokenFile, len(f))
	}
	port, err := strconv.Atoi(f[1])
	if err != nil || port <= 0 || port > 65535 {
		return "", fmt.Errorf("%s: bad port %q", stage1abi.MDSTokenFile, f[1])
	}
	var host net.IP
	switch {
	case opts.NetHost():
		host = net.IPv4(127, 0, 0, 1)
	case opts.NetContained():
		cfg, err := NetConfig(dir, opts.LocalConfig, nil)
		if err != nil {
			return "", err
		}
		if host, err = cfg.HostAddress(opts.Networks); err != nil {
			return "", fmt.Errorf("metadata service: %w", err)
		}
	default:
		return "", nil
	}
	return "http://" + net.JoinHostPort(host.String(), strconv.Itoa(port)) + "/" + f[0], nil
}
