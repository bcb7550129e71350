//go:build !linux

package networking

import "errors"

var errNotLinux = errors.New("pod networking needs Linux network namespaces")

func loopbackUp(string) error { return errNotLinux }

func netnsID(string) string { return "" }

func teardownIPMasq(*NetInfo, string) error { return errNotLinux }
