package podcfg

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/podlog"
)

// DefaultLocalConfig is rkt's local configuration directory when stage0
// passes no --local-config.
const DefaultLocalConfig = "/etc/rkt"

// Options are the run entrypoint's arguments (interface version 6).
type Options struct {
	Debug bool
	// Net is --net as given: "host", "none", or a list of networks
	// ("default", "default-restricted", "all", "name1,name2:IP=1.2.3.4;K=V").
	Net string
	// Networks is Net parsed: the networks to set up, empty for host and
	// none.
	Networks       []networking.Request
	Interactive    bool
	Hostname       string
	IPC            string // auto, private, parent
	DisableCaps    bool
	DisablePaths   bool
	DisableSeccomp bool
	// ResolvMode and HostsMode come from --dns-conf-mode.
	ResolvMode, HostsMode string
	PrivateUsers          string
	Mutable               bool
	LocalConfig           string
	UUID                  string
	// LogSize is the size of each app's log file (0: the default);
	// LogPrefix: in a pod of several apps, lines on rkt's stdout and
	// stderr begin with the app's name (interface version 7).
	LogSize   int64
	LogPrefix bool
}

// ParseEntrypointArgs parses the arguments of an entrypoint that takes
// flags and the pod UUID, run in the pod directory: it returns the UUID
// and the pod directory (the working directory).
func ParseEntrypointArgs(fs *flag.FlagSet, args []string) (uuid, dir string, err error) {
	if err := fs.Parse(args); err != nil {
		return "", "", err
	}
	if fs.NArg() != 1 {
		return "", "", fmt.Errorf("want exactly one argument, the pod UUID; got %q", fs.Args())
	}
	if dir, err = os.Getwd(); err != nil {
		return "", "", err
	}
	return fs.Arg(0), dir, nil
}

// ParseRunArgs parses the run entrypoint's arguments (without argv[0]).
func ParseRunArgs(args []string, errOut io.Writer) (*Options, error) {
	o := &Options{}
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var dnsMode, mdsToken string
	fs.BoolVar(&o.Debug, "debug", false, "print what stage1 does")
	fs.StringVar(&o.Net, "net", networking.NetDefault, "networking: host, none, or a list of networks (default, default-restricted, all, NAME[:K=V;...],...)")
	fs.BoolVar(&o.Interactive, "interactive", false, "give the (single) app a terminal of its own, relayed to the caller's")
	fs.StringVar(&o.Hostname, "hostname", "", "the pod's hostname (default rkt-<uuid>)")
	fs.StringVar(&o.IPC, "ipc", "auto", "IPC namespace: auto, private, parent")
	fs.BoolVar(&o.DisableCaps, "disable-capabilities-restriction", false, "keep every capability")
	fs.BoolVar(&o.DisablePaths, "disable-paths", false, "do not mask or write-protect /proc and /sys paths")
	fs.BoolVar(&o.DisableSeccomp, "disable-seccomp", false, "no seccomp filter")
	fs.StringVar(&dnsMode, "dns-conf-mode", "", "resolv=host|stage0|none|default,hosts=host|stage0|default")
	fs.StringVar(&o.PrivateUsers, "private-users", "", "user namespace SHIFT:COUNT (not supported yet)")
	fs.BoolVar(&o.Mutable, "mutable", false, "mutable pod (not supported)")
	fs.StringVar(&o.LocalConfig, "local-config", DefaultLocalConfig, "rkt's local configuration directory (its net.d has the administrator's networks and plugins)")
	fs.StringVar(&mdsToken, "mds-token", "", "metadata service token (ignored)")
	fs.Int64Var(&o.LogSize, "log-size", 0, "size in bytes of each app's log file, rotated once (default 1 MiB)")
	fs.BoolVar(&o.LogPrefix, "log-prefix", true, "in a pod of several apps, begin each line on rkt's stdout and stderr with the app's name")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		return nil, fmt.Errorf("want exactly one argument, the pod UUID; got %q", fs.Args())
	}
	o.UUID = fs.Arg(0)
	reqs, host, none, err := networking.ParseNetFlag(o.Net)
	if err != nil {
		return nil, err
	}
	switch {
	case host:
		o.Net = networking.NetHost
	case none:
		o.Net = networking.NetNone
	default:
		o.Networks = reqs
	}
	o.ResolvMode, o.HostsMode = "default", "default"
	if dnsMode != "" {
		for _, kv := range strings.Split(dnsMode, ",") {
			k, v, ok := strings.Cut(kv, "=")
			switch {
			case ok && k == "resolv" && (v == "host" || v == "stage0" || v == "none" || v == "default"):
				o.ResolvMode = v
			case ok && k == "hosts" && (v == "host" || v == "stage0" || v == "default"):
				o.HostsMode = v
			default:
				return nil, fmt.Errorf("--dns-conf-mode: bad entry %q: want resolv=host|stage0|none|default,hosts=host|stage0|default", kv)
			}
		}
	}
	switch o.IPC {
	case "auto", "private", "parent":
	default:
		return nil, fmt.Errorf("--ipc=%s: want auto, private or parent", o.IPC)
	}
	if o.Hostname == "" {
		o.Hostname = "rkt-" + o.UUID
	}
	if o.LogSize != 0 && o.LogSize < podlog.MinMaxSize {
		return nil, fmt.Errorf("--log-size=%d: want at least %d bytes", o.LogSize, podlog.MinMaxSize)
	}
	return o, nil
}

// NetHost reports whether the pod uses the caller's network namespace.
func (o *Options) NetHost() bool { return o.Net == networking.NetHost }

// NetNone reports whether the pod gets a network namespace with only lo.
func (o *Options) NetNone() bool { return o.Net == networking.NetNone }

// NetContained reports whether the pod gets a network namespace with CNI
// networks in it (any --net other than host and none).
func (o *Options) NetContained() bool { return len(o.Networks) > 0 }
