package networking

import "github.com/rkt/rkt/networking/netflag"

// The flag types and parsers live in package netflag (which the CLI uses
// without linking CNI); these names keep this package's API whole.
type (
	// Request is one --net entry.
	Request = netflag.Request
	// PortFlag is one --port flag.
	PortFlag = netflag.PortFlag
	// ManifestPort is a port an image manifest names.
	ManifestPort = netflag.ManifestPort
	// PortForward is a host port forwarded to a port of the pod.
	PortForward = netflag.PortForward
	// DNSFlags are the --dns* flags.
	DNSFlags = netflag.DNSFlags
	// HostsEntry is one --hosts-entry.
	HostsEntry = netflag.HostsEntry
)

// Names with a meaning of their own in --net, and resolv.conf modes.
const (
	NetDefault           = netflag.NetDefault
	NetDefaultRestricted = netflag.NetDefaultRestricted
	NetHost              = netflag.NetHost
	NetNone              = netflag.NetNone
	NetAll               = netflag.NetAll
	ResolvHost           = netflag.ResolvHost
	ResolvStage0         = netflag.ResolvStage0
	ResolvNone           = netflag.ResolvNone
	ResolvDefault        = netflag.ResolvDefault
)

// ErrBadFlag classifies bad flag values.
var ErrBadFlag = netflag.ErrBadFlag

// ParseNetFlag parses --net (see netflag.ParseNetFlag).
func ParseNetFlag(s string) ([]Request, bool, bool, error) { return netflag.ParseNetFlag(s) }

// ParsePortFlag parses one --port value.
func ParsePortFlag(s string) (PortFlag, error) { return netflag.ParsePortFlag(s) }

// ResolvePorts matches --port flags with the images' ports.
func ResolvePorts(flags []PortFlag, named []ManifestPort) ([]PortForward, error) {
	return netflag.ResolvePorts(flags, named)
}

// ParseHostsEntries parses the --hosts-entry flags.
func ParseHostsEntries(flags []string) (bool, []HostsEntry, error) {
	return netflag.ParseHostsEntries(flags)
}

// ResolvConf renders d as /etc/resolv.conf.
func ResolvConf(d DNS) []byte { return netflag.ResolvConf(d) }
