package main

import (
	"fmt"
	"os"
	"strings"
)

// globalFlags are the persistent flags every command sees.
var globalFlags = struct {
	Dir                string
	SystemConfigDir    string
	LocalConfigDir     string
	UserConfigDir      string
	Debug              bool
	InsecureOptions    insecureOptions
	TrustKeysFromHTTPS bool
}{
	Dir:             "/var/lib/rkt",
	SystemConfigDir: "/usr/lib/rkt",
	LocalConfigDir:  "/etc/rkt",
}

func init() {
	f := cmdRkt.PersistentFlags()
	f.StringVar(&globalFlags.Dir, "dir", globalFlags.Dir, "rkt data directory (image store and pods)")
	f.StringVar(&globalFlags.SystemConfigDir, "system-config", globalFlags.SystemConfigDir, "system (vendor) configuration directory")
	f.StringVar(&globalFlags.LocalConfigDir, "local-config", globalFlags.LocalConfigDir, "local (administrator) configuration directory")
	f.StringVar(&globalFlags.UserConfigDir, "user-config", "", "user configuration directory")
	f.BoolVar(&globalFlags.Debug, "debug", false, "print debugging information to stderr")
	f.Var(&globalFlags.InsecureOptions, "insecure-options", "comma-separated checks to skip: "+strings.Join(insecureNames, ","))
	f.BoolVar(&globalFlags.TrustKeysFromHTTPS, "trust-keys-from-https", false, "automatically trust keys found through ac-discovery-pubkeys over HTTPS")
}

// The insecure options, as in rkt.
const (
	insecureImage = 1 << iota
	insecureTLS
	insecureOnDisk
	insecureHTTP
	insecurePubKey
	insecureCapabilities
	insecurePaths
	insecureSeccomp
)

var insecureNames = []string{"none", "image", "tls", "ondisk", "http", "pubkey", "capabilities", "paths", "seccomp", "all-fetch", "all-run", "all"}

var insecureValues = map[string]int{
	"none":         0,
	"image":        insecureImage,
	"tls":          insecureTLS,
	"ondisk":       insecureOnDisk,
	"http":         insecureHTTP,
	"pubkey":       insecurePubKey,
	"capabilities": insecureCapabilities,
	"paths":        insecurePaths,
	"seccomp":      insecureSeccomp,
	"all-fetch":    insecureImage | insecureTLS | insecureHTTP | insecurePubKey,
	"all-run":      insecureCapabilities | insecurePaths | insecureSeccomp,
	"all":          insecureImage | insecureTLS | insecureOnDisk | insecureHTTP | insecurePubKey | insecureCapabilities | insecurePaths | insecureSeccomp,
}

// insecureOptions is the parsed --insecure-options value.
type insecureOptions struct {
	raw  string
	bits int
}

func (o *insecureOptions) String() string { return o.raw }
func (o *insecureOptions) Type() string   { return "options" }

// Set adds to what earlier --insecure-options flags gave.
func (o *insecureOptions) Set(v string) error {
	if o.raw != "" {
		v = o.raw + "," + v
	}
	o.raw = v
	return o.parse()
}

func (o *insecureOptions) parse() error {
	o.bits = 0
	if o.raw == "" {
		return nil
	}
	for _, name := range strings.Split(o.raw, ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		v, ok := insecureValues[name]
		if !ok {
			return usagef("unknown option %q (known: %s)", name, strings.Join(insecureNames, ", "))
		}
		o.bits |= v
	}
	return nil
}

func (o *insecureOptions) has(bit int) bool { return o.bits&bit != 0 }

// SkipImageCheck: skip signature verification.
func (o *insecureOptions) SkipImageCheck() bool { return o.has(insecureImage) }

// AllowHTTP: allow plain HTTP for images, signatures and keys.
func (o *insecureOptions) AllowHTTP() bool { return o.has(insecureHTTP) }

// SkipTLSCheck: accept any TLS certificate.
func (o *insecureOptions) SkipTLSCheck() bool { return o.has(insecureTLS) }

// AllowPubkeyFetch: allow fetching keys over insecure transports.
func (o *insecureOptions) AllowPubkeyFetch() bool { return o.has(insecurePubKey) }

// SkipCapabilities: give apps every capability.
func (o *insecureOptions) SkipCapabilities() bool { return o.has(insecureCapabilities) }

// SkipPaths: do not mask or make read-only /proc and /sys paths.
func (o *insecureOptions) SkipPaths() bool { return o.has(insecurePaths) }

// SkipSeccomp: no seccomp filter.
func (o *insecureOptions) SkipSeccomp() bool { return o.has(insecureSeccomp) }

// warn prints a warning for every skipped security check, each time.
func (o *insecureOptions) warnSkipped(w interface{ Write([]byte) (int, error) }, fetch bool) {
	if w == nil {
		w = os.Stderr
	}
	if fetch {
		if o.SkipTLSCheck() {
			fmt.Fprintln(w, "rkt: warning: TLS certificates are not checked (--insecure-options=tls)")
		}
		if o.AllowHTTP() {
			fmt.Fprintln(w, "rkt: warning: plain HTTP is allowed (--insecure-options=http)")
		}
	}
}
