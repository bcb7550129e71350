//go:build !linux

package networking

import (
	current "github.com/containernetworking/cni/pkg/types/100"

	"context"
	"errors"
)

var errNotLinux = errors.New("pod networking needs Linux network namespaces")

func loopbackUp(string) error { return errNotLinux }

func netnsID(string) string { return "" }

func teardownIPMasq(*NetInfo, string, string) error { return errNotLinux }

func ensureMasq(context.Context, string, masqRule) (bool, error) { return false, errNotLinux }

func ptpInProcess(context.Context, string, []byte, []string) ([]byte, bool, error) {
	return nil, false, nil
}

func ensureGuard(context.Context, string, string) (bool, string, error) {
	return false, "", errNotLinux
}

func markHostIfaces(*current.Result, uint32) error { return errNotLinux }

func claimPorts(string, string, string, []PortForward) error { return errNotLinux }

func releasePorts(string, string, []PortForward) error { return nil }

func checkHostRoutes([]*network) error { return nil }
