package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Devices is the cgroup v1 controller of device access. cgroup v2 has
// none: there a BPF program attached to the cgroup decides.
const Devices = "devices"

// AnyNumber in a Device's Major or Minor matches every number.
const AnyNumber = -1

// Device is one rule of a device allowlist, as the devices cgroup has
// them: the accesses in Access to the devices of type Type numbered
// Major:Minor are allowed.
type Device struct {
	// Type is 'c' (character device), 'b' (block device) or 'a' (both).
	Type byte
	// Major and Minor are the device numbers, or AnyNumber.
	Major, Minor int64
	// Access is a subset of "rwm": read, write (opening for them) and
	// mknod (creating a node of the device).
	Access string
}

// DefaultDevices are the devices an app may use: the nodes of the pod's
// /dev (stage2 binds the host's null, zero, full, random, urandom and tty
// there), and its own devpts instance's ptmx and pseudo-terminals (the
// Unix 98 pty slaves, major 136). Every other device can neither be
// opened nor created, whatever file system holds its node. It is runc's
// default list without the mknod of any device that runc allows (and
// without /dev/console, which the pod's /dev has not).
var DefaultDevices = []Device{
	{Type: 'c', Major: 1, Minor: 3, Access: "rwm"},           // null
	{Type: 'c', Major: 1, Minor: 5, Access: "rwm"},           // zero
	{Type: 'c', Major: 1, Minor: 7, Access: "rwm"},           // full
	{Type: 'c', Major: 1, Minor: 8, Access: "rwm"},           // random
	{Type: 'c', Major: 1, Minor: 9, Access: "rwm"},           // urandom
	{Type: 'c', Major: 5, Minor: 0, Access: "rwm"},           // tty
	{Type: 'c', Major: 5, Minor: 2, Access: "rwm"},           // ptmx
	{Type: 'c', Major: 136, Minor: AnyNumber, Access: "rwm"}, // pts/*
}

// String is the rule in the syntax of the v1 devices.allow file, e.g.
// "c 1:3 rwm" or "c 136:* rwm".
func (d Device) String() string {
	num := func(n int64) string {
		if n == AnyNumber {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return string(d.Type) + " " + num(d.Major) + ":" + num(d.Minor) + " " + d.Access
}

// check reports whether the rule is well formed.
func (d Device) check() error {
	if d.Type != 'a' && d.Type != 'b' && d.Type != 'c' {
		return fmt.Errorf("device rule %q: type must be a, b or c", d)
	}
	if d.Access == "" || strings.Trim(d.Access, "rwm") != "" {
		return fmt.Errorf("device rule %q: access must be made of r, w and m", d)
	}
	for _, n := range []int64{d.Major, d.Minor} {
		if n != AnyNumber && (n < 0 || n > 1<<31-1) {
			return fmt.Errorf("device rule %q: bad device number", d)
		}
	}
	return nil
}

// LimitDevices restricts the devices the app's processes may open or
// create to allow: in the app's cgroup of the v1 devices hierarchy when
// the pod has one (default deny, then each rule), else with a device
// program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the app's cgroup v2
// directory, which then runs after any the caller's cgroups have. AddApp
// must have made the app's cgroups. A rule the caller's own devices
// cgroup denies is left out (the app cannot get more than its caller).
func (p *Pod) LimitDevices(app string, allow []Device) error {
	for _, d := range allow {
		if err := d.check(); err != nil {
			return fmt.Errorf("app %s: %w", app, err)
		}
	}
	for i, h := range p.hs {
		if !h.Unified && h.Has(Devices) {
			dir := h.Dir(path.Join(p.paths[i], AppLeaf(app)))
			if err := limitDevicesV1(dir, allow); err != nil {
				return fmt.Errorf("app %s: %w", app, err)
			}
			return nil
		}
	}
	for i, h := range p.hs {
		if h.Unified {
			dir := h.Dir(path.Join(p.paths[i], AppLeaf(app)))
			if err := attachDeviceProgram(dir, allow); err != nil {
				return fmt.Errorf("app %s: limit its devices in %s: %w", app, dir, err)
			}
			return nil
		}
	}
	return fmt.Errorf("app %s: cannot limit its devices: neither a v1 devices hierarchy nor a cgroup v2 hierarchy is mounted (mount one, e.g. mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices): %w", app, ErrUnavailable)
}

// limitDevicesV1 denies every device in the v1 devices cgroup dir, then
// allows each rule of allow (one rule per write, as the kernel wants).
func limitDevicesV1(dir string, allow []Device) error {
	if err := write(dir, "devices.deny", "a"); err != nil {
		return err
	}
	file := filepath.Join(dir, "devices.allow")
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("limit devices: %w", err)
	}
	defer f.Close()
	for _, d := range allow {
		if _, err := f.WriteString(d.String() + "\n"); err != nil {
			if errors.Is(err, syscall.EPERM) {
				continue // the parent denies it: so does the app's cgroup
			}
			return fmt.Errorf("allow device %q in %s: %w", d, file, err)
		}
	}
	return f.Close()
}
