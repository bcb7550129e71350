package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/spf13/pflag"

	"github.com/rkt/rkt/networking/netflag"
	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/caps"
	"github.com/rkt/rkt/pkg/podlog"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/stage0"
)

// podFlags are the pod-level flags of run and prepare. They may appear
// before the first image or among any image's flags.
type podFlags struct {
	net          string
	hostname     string
	interactive  bool
	volumes      []string
	mounts       []string // before any image: for every app
	setEnv       []string
	setEnvFile   []string
	inheritEnv   bool
	uuidFileSave string
	podManifest  string
	pullPolicy   string
	stage1       stage0.Stage1Ref
	ipc          string
	quiet        bool
	annotations  []string
	ports        []string
	dns          []string
	dnsSearch    []string
	dnsOpt       []string
	dnsDomain    string
	hostsEntries []string
	stopTimeout  string
	logSize      string
	logPrefix    bool
	mdsRegister  string // auto, true, false
}

// newPodFlags returns the pod flags with their defaults.
func newPodFlags(defaultPull string) *podFlags {
	return &podFlags{net: "", pullPolicy: defaultPull, ipc: "auto", logPrefix: true, mdsRegister: "auto"} // "": the stage1's default (default, or host for fly)
}

// register adds the pod flags to fs. The current values are the
// defaults, so registering them again in an app's flag set (flags after an
// image) keeps what was parsed before; list flags always append.
func (pf *podFlags) register(fs *pflag.FlagSet, forRun bool) {
	fs.StringVar(&pf.net, "net", pf.net, "networks: default (the default), default-restricted, none, host, all, or names from net.d, with per-network CNI args: name:K=V;K2=V2")
	fs.Var((*appendValue)(&pf.ports), "port", "forward a host port: NAME:[HOSTIP:]HOSTPORT (a port named by the image) or [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]")
	fs.Var((*appendValue)(&pf.dns), "dns", "name server IP for the pod (repeatable), or host (the host's resolv.conf), or none")
	fs.Var((*appendValue)(&pf.dnsSearch), "dns-search", "DNS search domain (repeatable)")
	fs.Var((*appendValue)(&pf.dnsOpt), "dns-opt", "resolv.conf option (repeatable)")
	fs.StringVar(&pf.dnsDomain, "dns-domain", pf.dnsDomain, "DNS domain")
	fs.Var((*appendValue)(&pf.hostsEntries), "hosts-entry", "an /etc/hosts entry IP=HOST[,HOST...] (repeatable), or host (the host's /etc/hosts)")
	fs.StringVar(&pf.hostname, "hostname", pf.hostname, "the pod's hostname (default rkt-<uuid>)")
	fs.BoolVar(&pf.interactive, "interactive", pf.interactive, "give the (single) app a terminal of its own, relayed to this one")
	fs.Var((*appendValue)(&pf.volumes), "volume", "pod volume: NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL] or NAME,kind=empty[,mode=0755][,uid=0][,gid=0]")
	fs.Var((*appendValue)(&pf.setEnv), "set-env", "environment variable K=V for every app")
	fs.Var((*appendValue)(&pf.setEnvFile), "set-env-file", "file of NAME=VALUE lines for every app, read as systemd reads an EnvironmentFile= (quotes, # and ; comments, backslash continuations)")
	fs.BoolVar(&pf.inheritEnv, "inherit-env", pf.inheritEnv, "apps inherit rkt's environment")
	fs.StringVar(&pf.uuidFileSave, "uuid-file-save", pf.uuidFileSave, "write the pod's UUID to this file")
	fs.StringVar(&pf.podManifest, "pod-manifest", pf.podManifest, "run this appc pod manifest instead of images and flags")
	fs.StringVar(&pf.pullPolicy, "pull-policy", pf.pullPolicy, "when to fetch images: new, update or never")
	fs.StringVar(&pf.stage1.Path, "stage1-path", pf.stage1.Path, "stage1 image file")
	fs.StringVar(&pf.stage1.URL, "stage1-url", pf.stage1.URL, "stage1 image URL")
	fs.StringVar(&pf.stage1.Name, "stage1-name", pf.stage1.Name, "stage1 image name")
	fs.StringVar(&pf.stage1.Hash, "stage1-hash", pf.stage1.Hash, "stage1 image ID in the store")
	fs.StringVar(&pf.stage1.FromDir, "stage1-from-dir", pf.stage1.FromDir, "stage1 image file name in the stage1 images directory (e.g. stage1-fly.aci)")
	fs.StringVar(&pf.ipc, "ipc", pf.ipc, "IPC namespace: auto, private or parent")
	fs.Var((*appendValue)(&pf.annotations), "pod-annotation", "pod annotation K=V")
	fs.StringVar(&pf.stopTimeout, "stop-timeout", pf.stopTimeout, "how long the apps get between SIGTERM and SIGKILL when the pod stops (e.g. 30s; default 10s)")
	if forRun {
		fs.StringVar(&pf.mdsRegister, "mds-register", pf.mdsRegister, "register the pod with the metadata service: auto (when it runs), true (fail if it does not), false")
		fs.Lookup("mds-register").NoOptDefVal = "true"
	}
	if !forRun {
		fs.BoolVar(&pf.quiet, "quiet", pf.quiet, "print only the UUID")
	} else {
		registerLogFlags(fs, &pf.logSize, &pf.logPrefix)
	}
}

// appendValue is a repeatable flag that appends on every use.
type appendValue []string

func (a *appendValue) String() string     { return strings.Join(*a, ",") }
func (a *appendValue) Set(v string) error { *a = append(*a, v); return nil }
func (a *appendValue) Type() string       { return "stringArray" }

// appFlags builds the flag set of the flags that follow an image: the
// app's own and the pod flags.
func appFlags(a *stage0.AppSpec, iso *isolatorFlags, pf *podFlags, forRun bool) *pflag.FlagSet {
	fs := appOnlyFlags(a, iso)
	pf.register(fs, forRun)
	return fs
}

// appOnlyFlags is the flag set of an app's own flags (what rkt run --help
// lists as the app flags).
func appOnlyFlags(a *stage0.AppSpec, iso *isolatorFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("app", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SortFlags = false
	fs.Usage = func() {}
	fs.StringVar(&a.Name, "name", "", "app name (lower-case letters, digits and dashes)")
	fs.StringVar(&a.Exec, "exec", "", "executable to run instead of the image's command line: the image's arguments are dropped too, unless arguments follow --")
	fs.StringVar(&a.User, "user", "", "user (number, or name in the image's /etc/passwd)")
	fs.StringVar(&a.Group, "group", "", "group (number, or name in the image's /etc/group)")
	fs.StringVar(&iso.suppGIDs, "supplementary-gids", "", "comma-separated supplementary group IDs")
	fs.StringVar(&a.WorkingDir, "working-dir", "", "working directory")
	fs.Var((*appendValue)(&a.Environment), "environment", "environment variable K=V for this app")
	fs.Var((*appendValue)(&iso.mounts), "mount", "volume=NAME,target=PATH")
	fs.BoolVar(&a.ReadOnlyRootFS, "readonly-rootfs", false, "mount the app's root read-only")
	fs.StringVar(&a.Signature, "signature", "", "detached signature of this image")
	iso.register(fs)
	return fs
}

// appFlagError is a bad flag after an image: main prints it with a
// pointer to the app flags, not the pod flags' usage.
type appFlagError struct{ msg string }

func (e *appFlagError) Error() string { return e.msg }

// appSeparator is what ends an app's arguments before the next image.
const appSeparator = "---"

// badAppFlag explains a flag error after image, suggesting the nearest
// known flag for an unknown one.
func badAppFlag(image string, fs *pflag.FlagSet, err error) error {
	msg := fmt.Sprintf("image %s: %v", image, err)
	if name, ok := strings.CutPrefix(err.Error(), "unknown flag: --"); ok {
		best, bestD := "", 3
		fs.VisitAll(func(f *pflag.Flag) {
			if d := editDistance(name, f.Name); d < bestD {
				best, bestD = f.Name, d
			}
		})
		if best != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", best)
		}
	}
	return &appFlagError{msg: msg}
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// isolatorFlags are per-app resource and security flags.
type isolatorFlags struct {
	cpu, memory, cpuShares, oomScoreAdj, pidsLimit string
	capsRetain, capsRemove, seccomp                string
	suppGIDs                                       string
	mounts                                         []string
	annotations                                    []string
	socketActivated                                string
}

func (f *isolatorFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cpu, "cpu", "", "CPU limit (Kubernetes quantity: 750m = 0.75 CPU; at least 10m)")
	fs.StringVar(&f.memory, "memory", "", "memory limit (128M, 1Gi, ...; at least 8Mi)")
	fs.StringVar(&f.cpuShares, "cpu-shares", "", "relative CPU weight")
	fs.StringVar(&f.oomScoreAdj, "oom-score-adj", "", "OOM score adjustment (-1000..1000)")
	fs.StringVar(&f.pidsLimit, "pids-limit", "", "maximum number of processes")
	fs.StringVar(&f.capsRetain, "caps-retain", "", "capabilities to keep (all others dropped)")
	fs.StringVar(&f.capsRemove, "caps-remove", "", "capabilities to drop from the default set")
	fs.StringVar(&f.seccomp, "seccomp", "", "mode=retain|remove[,errno=ENAME],SYSCALL|@GROUP,...")
	fs.Var((*appendValue)(&f.annotations), "annotation", "app annotation K=V")
	fs.StringVar(&f.socketActivated, "socket-activated", "", "give this app the sockets systemd passed rkt (LISTEN_FDS): true or false (default: true in a one-app pod)")
	fs.Lookup("socket-activated").NoOptDefVal = "true"
}

// apply turns the isolator flags into pod-manifest terms.
func (f *isolatorFlags) apply(a *stage0.AppSpec) error {
	add := func(i types.Isolator) { a.Isolators = append(a.Isolators, i) }
	if f.cpu != "" {
		i, err := stage0.CPUIsolator(f.cpu)
		if err != nil {
			return usagef("--cpu: %v", err)
		}
		add(*i)
	}
	if f.memory != "" {
		i, err := stage0.MemoryIsolator(f.memory)
		if err != nil {
			return usagef("--memory: %v", err)
		}
		add(*i)
	}
	if f.cpuShares != "" {
		n, err := strconv.Atoi(f.cpuShares)
		if err != nil {
			return usagef("--cpu-shares=%s: want a number", f.cpuShares)
		}
		r, err := types.NewLinuxCPUShares(n)
		if err != nil {
			return usagef("--cpu-shares=%s: %v", f.cpuShares, err)
		}
		add(r.AsIsolator())
	}
	if f.oomScoreAdj != "" {
		n, err := strconv.Atoi(f.oomScoreAdj)
		if err != nil {
			return usagef("--oom-score-adj=%s: want a number from -1000 to 1000", f.oomScoreAdj)
		}
		r, err := types.NewLinuxOOMScoreAdj(n)
		if err != nil {
			return usagef("--oom-score-adj=%s: %v", f.oomScoreAdj, err)
		}
		add(r.AsIsolator())
	}
	if f.capsRetain != "" && f.capsRemove != "" {
		return usagef("--caps-retain and --caps-remove cannot be used together")
	}
	for flag, v := range map[string]string{"--caps-retain": f.capsRetain, "--caps-remove": f.capsRemove} {
		if _, err := caps.CapNumbers(capList(v)); v != "" && err != nil {
			return usagef("%s: %v", flag, err)
		}
	}
	if f.capsRetain != "" {
		r, err := types.NewLinuxCapabilitiesRetainSet(capList(f.capsRetain)...)
		if err != nil {
			return usagef("--caps-retain: %v", err)
		}
		i, err := r.AsIsolator()
		if err != nil {
			return err
		}
		add(*i)
	}
	if f.capsRemove != "" {
		r, err := types.NewLinuxCapabilitiesRevokeSet(capList(f.capsRemove)...)
		if err != nil {
			return usagef("--caps-remove: %v", err)
		}
		i, err := r.AsIsolator()
		if err != nil {
			return err
		}
		add(*i)
	}
	if f.seccomp != "" {
		i, err := seccompIsolator(f.seccomp)
		if err != nil {
			return err
		}
		add(*i)
	}
	if f.pidsLimit != "" {
		if n, err := strconv.Atoi(f.pidsLimit); err != nil || n <= 0 {
			return usagef("--pids-limit=%s: want a positive number", f.pidsLimit)
		}
		f.annotations = append(f.annotations, "rkt.dev/pids-limit="+f.pidsLimit)
	}
	if f.socketActivated != "" {
		if f.socketActivated != "true" && f.socketActivated != "false" {
			return usagef("--socket-activated=%s: want true or false", f.socketActivated)
		}
		f.annotations = append(f.annotations, stage1abi.SocketActivatedAnno+"="+f.socketActivated)
	}
	if f.suppGIDs != "" {
		for _, g := range strings.Split(f.suppGIDs, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(g))
			if err != nil || n < 0 {
				return usagef("--supplementary-gids: %q is not a group ID", g)
			}
			a.SupplementaryGIDs = append(a.SupplementaryGIDs, n)
		}
	}
	for _, m := range f.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return err
		}
		a.Mounts = append(a.Mounts, *mt)
	}
	for _, kv := range f.annotations {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--annotation %q: want K=V", kv)
		}
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Annotations[k] = v
	}
	return nil
}

func capList(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func seccompIsolator(spec string) (*types.Isolator, error) {
	mode, errno := "", ""
	var calls []string
	for _, p := range strings.Split(spec, ",") {
		switch {
		case strings.HasPrefix(p, "mode="):
			mode = strings.TrimPrefix(p, "mode=")
		case strings.HasPrefix(p, "errno="):
			errno = strings.TrimPrefix(p, "errno=")
		case p != "":
			calls = append(calls, p)
		}
	}
	if len(calls) == 0 {
		return nil, usagef("--seccomp=%s: name at least one syscall or @group", spec)
	}
	switch mode {
	case "retain":
		r, err := types.NewLinuxSeccompRetainSet(errno, calls...)
		if err != nil {
			return nil, usagef("--seccomp: %v", err)
		}
		return r.AsIsolator()
	case "remove":
		r, err := types.NewLinuxSeccompRemoveSet(errno, calls...)
		if err != nil {
			return nil, usagef("--seccomp: %v", err)
		}
		return r.AsIsolator()
	}
	return nil, usagef("--seccomp=%s: want mode=retain or mode=remove", spec)
}

func parseMount(s string) (*schema.Mount, error) {
	var vol, target string
	for _, p := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "volume":
			vol = v
		case "target":
			target = v
		default:
			return nil, usagef("--mount %q: unknown key %q (want volume=NAME,target=PATH)", s, k)
		}
	}
	if vol == "" || !strings.HasPrefix(target, "/") {
		return nil, usagef("--mount %q: want volume=NAME,target=/ABSOLUTE/PATH", s)
	}
	n, err := types.NewACName(vol)
	if err != nil {
		return nil, usagef("--mount %q: volume name: %v", s, err)
	}
	return &schema.Mount{Volume: *n, Path: target}, nil
}

// parseApps splits what follows the pod flags into apps:
// IMAGE [app flags] [-- ARGS... [---]] IMAGE2 ...
func parseApps(args []string, pf *podFlags, forRun bool) ([]stage0.AppSpec, error) {
	var apps []stage0.AppSpec
	for i := 0; i < len(args); {
		a := stage0.AppSpec{Image: args[i]}
		if a.Image == appSeparator {
			return nil, usagef("%q separates apps: put it between an app and the next image (IMAGE [app flags] [-- ARGS...] --- IMAGE2)", appSeparator)
		}
		if strings.HasPrefix(a.Image, "-") {
			return nil, usagef("expected an image, got %q", a.Image)
		}
		i++
		var iso isolatorFlags
		fs := appFlags(&a, &iso, pf, forRun)
		var toks []string
		for i < len(args) && args[i] != "--" && args[i] != appSeparator && strings.HasPrefix(args[i], "-") {
			tok := args[i]
			toks = append(toks, tok)
			i++
			name := strings.TrimLeft(tok, "-")
			if !strings.Contains(name, "=") {
				if fl := fs.Lookup(name); fl != nil && fl.NoOptDefVal == "" && i < len(args) {
					toks = append(toks, args[i]) // "--flag value"
					i++
				}
			}
		}
		if err := fs.Parse(toks); err != nil {
			return nil, badAppFlag(a.Image, fs, err)
		}
		if i < len(args) && args[i] == "--" {
			i++
			a.Args = []string{}
			for i < len(args) && args[i] != "---" {
				a.Args = append(a.Args, args[i])
				i++
			}
			if i < len(args) {
				i++ // "---"
			}
		} else if i < len(args) && args[i] == appSeparator {
			i++ // an app without arguments
		}
		if err := iso.apply(&a); err != nil {
			return nil, err
		}
		apps = append(apps, a)
	}
	for i := range apps {
		for _, m := range pf.mounts {
			mt, err := parseMount(m)
			if err != nil {
				return nil, err
			}
			apps[i].Mounts = append(apps[i].Mounts, *mt)
		}
	}
	return apps, nil
}

// podSpec turns the pod flags and apps into a stage0.PodSpec.
func (pf *podFlags) podSpec(apps []stage0.AppSpec) (*stage0.PodSpec, error) {
	spec := &stage0.PodSpec{Apps: apps, SetEnv: pf.setEnv, InheritEnv: pf.inheritEnv, Stage1: pf.stage1, Hostname: pf.hostname}
	for _, f := range pf.setEnvFile {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--set-env-file: %w", err)
		}
		lines, err := stage0.ParseEnvFile(f, data)
		if err != nil {
			return nil, usagef("--set-env-file %v", err)
		}
		spec.SetEnvFile = append(spec.SetEnvFile, lines...)
	}
	for _, v := range pf.volumes {
		vol, err := types.VolumeFromString(v)
		if err != nil {
			return nil, usagef("--volume %q: %v", v, err)
		}
		if vol.Kind == "host" && !strings.HasPrefix(vol.Source, "/") {
			return nil, usagef("--volume %q: source must be an absolute path", v)
		}
		spec.Volumes = append(spec.Volumes, *vol)
	}
	for _, kv := range pf.annotations {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usagef("--pod-annotation %q: want K=V", kv)
		}
		if spec.Annotations == nil {
			spec.Annotations = map[string]string{}
		}
		spec.Annotations[k] = v
	}
	if pf.stopTimeout != "" {
		if d, err := time.ParseDuration(pf.stopTimeout); err != nil || d < 0 {
			return nil, usagef("--stop-timeout=%s: want a duration such as 30s", pf.stopTimeout)
		}
		if spec.Annotations == nil {
			spec.Annotations = map[string]string{}
		}
		spec.Annotations[stage1abi.StopTimeoutAnno] = pf.stopTimeout
	}
	if err := spec.Check(); err != nil {
		return nil, usagef("%v", err)
	}
	if pf.podManifest != "" {
		if len(apps) > 0 {
			return nil, usagef("--pod-manifest cannot be combined with images on the command line")
		}
		data, err := os.ReadFile(pf.podManifest)
		if err != nil {
			return nil, fmt.Errorf("--pod-manifest: %w", err)
		}
		var pm schema.PodManifest
		if err := appcjson.Unmarshal(data, &pm); err != nil {
			return nil, fmt.Errorf("--pod-manifest %s: %w", pf.podManifest, err)
		}
		if len(pm.Apps) == 0 {
			return nil, fmt.Errorf("--pod-manifest %s has no apps", pf.podManifest)
		}
		spec.PodManifest = &pm
	}
	_, host, none, err := netflag.ParseNetFlag(pf.net)
	if err != nil {
		return nil, usagef("--net: %v", err)
	}
	for _, p := range pf.ports {
		pfl, err := netflag.ParsePortFlag(p)
		if err != nil {
			return nil, usagef("%v", err)
		}
		spec.Ports = append(spec.Ports, pfl)
	}
	if len(spec.Ports) > 0 && (host || none) {
		return nil, usagef("--port needs a pod network: with --net=%s there is nothing to forward to", pf.net)
	}
	spec.DNS = netflag.DNSFlags{Servers: pf.dns, Search: pf.dnsSearch, Options: pf.dnsOpt, Domain: pf.dnsDomain}
	spec.HostsEntries = pf.hostsEntries
	if _, err := spec.DNSConfMode(); err != nil {
		return nil, usagef("%v", err)
	}
	switch pf.mdsRegister {
	case "auto", "true", "false":
	default:
		return nil, usagef("--mds-register=%s: want true, false or auto", pf.mdsRegister)
	}
	switch pf.ipc {
	case "auto", "private", "parent":
	default:
		return nil, usagef("--ipc=%s: want auto, private or parent", pf.ipc)
	}
	return spec, nil
}

// registerLogFlags adds the flags of the apps' logs (run, run-prepared).
func registerLogFlags(fs *pflag.FlagSet, size *string, prefix *bool) {
	fs.StringVar(size, "log-size", *size, "size of each app's log file in the pod directory (rkt logs), rotated once: 1Mi (the default), 512Ki, ...; at least 64Ki")
	fs.BoolVar(prefix, "log-prefix", *prefix, "in a pod of several apps, begin each line of their output on rkt's stdout and stderr with the app's name")
}

// logSizeFlag parses --log-size ("": the default, 0).
func logSizeFlag(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseQuantity(s)
	if err != nil {
		return 0, usagef("--log-size: %v", err)
	}
	if n < podlog.MinMaxSize {
		return 0, usagef("--log-size=%s: want at least 64Ki", s)
	}
	return n, nil
}
