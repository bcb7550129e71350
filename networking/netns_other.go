//go:build !linux

package networking

import (
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
