package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/networking/netflag"
	"github.com/rkt/rkt/pkg/termsafe"
	"github.com/rkt/rkt/stage0"
)

// runPodFlags holds the pod flags of run and prepare (one command runs
// per process).
var runPodFlags = newPodFlags("new")

func newRunCmd(prepare bool) *cobra.Command {
	use, short := "run", "Run images as a pod in the foreground"
	if prepare {
		use, short = "prepare", "Prepare a pod to be run later with rkt run-prepared, and print its UUID"
	}
	c := &cobra.Command{
		Use:   use + " [pod flags] IMAGE [app flags] [-- ARGS... [---]] [IMAGE2 ...]",
		Short: short,
		Long: short + `.

IMAGE is an image ID, file, URL or name (see rkt fetch). Flags after an image
apply to that app (the app flags below); pod flags may appear anywhere.
Arguments after "--" replace the image's, up to "---", which also ends an
app that has no arguments before the next image. --exec replaces the
image's whole command line: without arguments after "--", the executable
runs with none (the image's arguments are for the image's executable).

An image's isolators may narrow the default capabilities and seccomp filter
but not widen them: an image that asks for more is refused unless the
operator replaces its isolator with the flag after the image (--caps-retain,
--caps-remove, --seccomp, --oom-score-adj) or passes
--insecure-options=capabilities or seccomp.

App flags (after an image, for that app):

` + appOnlyFlags(&stage0.AppSpec{}, &isolatorFlags{}).FlagUsages(),
		Example: runExample(prepare),
		PreRunE: ensureSuperuser,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrPrepare(cmd, args, prepare)
		},
	}
	c.Flags().SetInterspersed(false)
	runPodFlags.register(c.Flags(), !prepare)
	c.Flags().Var((*appendValue)(&runPodFlags.mounts), "mount", "volume=NAME,target=PATH for every app")
	return c
}

func runExample(prepare bool) string {
	if prepare {
		return `  # Prepare now, run later (e.g. from a unit's ExecStart=):
  uuid=$(rkt prepare --quiet example.com/app:1.0 --memory=128M)
  rkt run-prepared "$uuid"`
	}
	return `  # One app, limited to 0.75 CPU and 128 MiB, as user 1000:
  rkt run example.com/app:1.0 --cpu=750m --memory=128M --user=1000

  # Two apps in one pod, the first with its own arguments:
  rkt run --net=none example.com/a -- -v --- example.com/b --name=b

  # A local image file without a signature:
  rkt --insecure-options=image run ./app.aci`
}

func init() {
	cmdRkt.AddCommand(newRunCmd(false), newRunCmd(true), cmdRunPrepared)
}

// debugf prints a debugging line when --debug is on.
func debugf(cmd *cobra.Command, format string, args ...any) {
	if globalFlags.Debug {
		fmt.Fprintf(cmd.ErrOrStderr(), "rkt: debug: %s\n", termsafe.String(fmt.Sprintf(format, args...)))
	}
}

// phaseTimer prints the time each start-path phase took under --debug.
func phaseTimer(cmd *cobra.Command) func(string) {
	last := time.Now()
	return func(phase string) {
		now := time.Now()
		debugf(cmd, "phase %-28s %7.2f ms", phase, float64(now.Sub(last).Microseconds())/1000)
		last = now
	}
}

func stage1ImagesDir() string {
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			return filepath.Dir(real)
		}
		return filepath.Dir(exe)
	}
	return "/usr/local/bin"
}

func runOrPrepare(cmd *cobra.Command, args []string, prepare bool) error {
	phase := phaseTimer(cmd)
	pf := runPodFlags
	// Recorded for rkt generate systemd UUID; before parseApps adds the
	// pod flags that follow the images to pf.
	recorded := runArgs(cmd, args, map[string]bool{"quiet": true})
	apps, err := parseApps(args, pf, !prepare)
	if err != nil {
		return err
	}
	spec, err := pf.podSpec(apps)
	if err != nil {
		return err
	}
	spec.RunArgs = recorded
	io := &globalFlags.InsecureOptions
	spec.Consent = stage0.Consent{Capabilities: io.SkipCapabilities(), Seccomp: io.SkipSeccomp()}
	if pf.interactive && len(apps) > 1 {
		return usagef("--interactive works with one app only")
	}
	logSize, err := logSizeFlag(pf.logSize)
	if err != nil {
		return err
	}
	if spec.Stage1.ImagesDir == "" {
		spec.Stage1.ImagesDir = stage1ImagesDir()
		if c, err := loadConfig(); err == nil && c.Paths.Stage1Images != "" {
			spec.Stage1.ImagesDir = c.Paths.Stage1Images
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openStore()
	if err != nil {
		return err
	}
	fetchFlags.pullPolicy, fetchFlags.maxSize = pf.pullPolicy, "16Gi"
	f, err := newFetcher(cmd, s)
	if err != nil {
		return err
	}
	phase("setup")
	pr, err := stage0.Prepare(ctx, f, filepath.Join(globalFlags.Dir, "pods"), spec, phase)
	if err != nil {
		return err
	}
	if pf.uuidFileSave != "" {
		if err := os.WriteFile(pf.uuidFileSave, []byte(pr.Pod.UUID+"\n"), 0o644); err != nil {
			pr.Abort()
			return fmt.Errorf("--uuid-file-save: %w", err)
		}
	}
	dnsMode, _ := spec.DNSConfMode() // checked in podSpec
	if prepare {
		// run-prepared runs the pod with these unless it is given others.
		if err := pr.SavePreparedOptions(stage0.PreparedOptions{Net: pf.net, Hostname: pf.hostname, DNSConfMode: dnsMode, IPC: pf.ipc}); err != nil {
			pr.Abort()
			return err
		}
		pr.Close()
		if err := pr.Pod.ToPrepared(); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), pr.Pod.UUID)
		return nil
	}
	pr.Touch()
	phase("record image use")
	opts := stage0.RunOptions{
		Debug: globalFlags.Debug, Net: pf.net, Hostname: pf.hostname, Interactive: pf.interactive, IPC: pf.ipc,
		DisableCaps: io.SkipCapabilities(), DisablePaths: io.SkipPaths(), DisableSeccomp: io.SkipSeccomp(),
		DNSConfMode: dnsMode, LocalConfig: globalFlags.LocalConfigDir,
		LogSize: logSize, NoLogPrefix: !pf.logPrefix,
		MDSRegister: stage0.MDSMode(pf.mdsRegister), Warnf: warnf(cmd),
	}
	warnRun(cmd, io)
	debugf(cmd, "pod %s: exec stage1", pr.Pod.UUID)
	err = pr.Exec(opts)
	pr.Close()
	return err
}

// warnf prints warnings of stage0 on the command's stderr.
func warnf(cmd *cobra.Command) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), "rkt: warning: "+format+"\n", args...)
	}
}

// warnRun prints a warning for every run-time check that is skipped.
func warnRun(cmd *cobra.Command, io *insecureOptions) {
	for _, w := range []struct {
		on   bool
		what string
	}{
		{io.SkipCapabilities(), "apps get every capability (--insecure-options=capabilities)"},
		{io.SkipPaths(), "/proc and /sys paths are not masked (--insecure-options=paths)"},
		{io.SkipSeccomp(), "no seccomp filter (--insecure-options=seccomp)"},
	} {
		if w.on {
			fmt.Fprintf(cmd.ErrOrStderr(), "rkt: warning: %s\n", w.what)
		}
	}
}

var runPreparedFlags = struct {
	net, hostname, ipc string
	interactive        bool
	dns, dnsSearch     []string
	dnsOpt, hosts      []string
	dnsDomain          string
	logSize            string
	logPrefix          bool
	mdsRegister        string
}{logPrefix: true, mdsRegister: "auto"}

var cmdRunPrepared = &cobra.Command{
	Use:   "run-prepared UUID",
	Short: "Run a prepared pod",
	Long: `Run a prepared pod. It runs with the --net, --hostname, --ipc, --dns* and
--hosts-entry given to rkt prepare, unless others are given here: each of
--net, --hostname and --ipc replaces prepare's; any of --dns, --dns-search,
--dns-opt, --dns-domain and --hosts-entry replaces all of prepare's.`,
	Args:    cobra.ExactArgs(1),
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := runPreparedFlags
		if _, _, _, err := netflag.ParseNetFlag(f.net); err != nil {
			return usagef("--net: %v", err)
		}
		logSize, err := logSizeFlag(f.logSize)
		if err != nil {
			return err
		}
		switch f.mdsRegister {
		case "auto", "true", "false":
		default:
			return usagef("--mds-register=%s: want true, false or auto", f.mdsRegister)
		}
		switch f.ipc {
		case "", "auto", "private", "parent":
		default:
			return usagef("--ipc=%s: want auto, private or parent", f.ipc)
		}
		net := &stage0.PodSpec{Hostname: f.hostname, HostsEntries: f.hosts,
			DNS: netflag.DNSFlags{Servers: f.dns, Search: f.dnsSearch, Options: f.dnsOpt, Domain: f.dnsDomain}}
		if err := net.Check(); err != nil {
			return usagef("%v", err)
		}
		dnsMode, err := net.DNSConfMode()
		if err != nil {
			return usagef("%v", err)
		}
		if len(f.dns)+len(f.dnsSearch)+len(f.dnsOpt)+len(f.hosts) == 0 && f.dnsDomain == "" {
			net, dnsMode = nil, ""
		}
		ctx, cancel := signalContext()
		defer cancel()
		s, err := openStore()
		if err != nil {
			return err
		}
		io := &globalFlags.InsecureOptions
		warnRun(cmd, io)
		return stage0.RunPrepared(ctx, s, filepath.Join(globalFlags.Dir, "pods"), args[0], stage0.RunOptions{
			Debug: globalFlags.Debug, Net: f.net, Hostname: f.hostname, Interactive: f.interactive, IPC: f.ipc,
			DisableCaps: io.SkipCapabilities(), DisablePaths: io.SkipPaths(), DisableSeccomp: io.SkipSeccomp(),
			DNSConfMode: dnsMode, LocalConfig: globalFlags.LocalConfigDir,
			LogSize: logSize, NoLogPrefix: !f.logPrefix,
			MDSRegister: stage0.MDSMode(f.mdsRegister), Warnf: warnf(cmd),
		}, net)
	},
}

func init() {
	f := cmdRunPrepared.Flags()
	rp := &runPreparedFlags
	f.StringVar(&rp.net, "net", "", "networks (see rkt run --net; default: prepare's, else the stage1's default)")
	f.StringVar(&rp.hostname, "hostname", "", "the pod's hostname (default: prepare's, else rkt-<uuid>)")
	f.StringVar(&rp.ipc, "ipc", "", "IPC namespace: auto, private or parent (default: prepare's, else auto)")
	f.BoolVar(&rp.interactive, "interactive", false, "give the app a terminal of its own, relayed to this one")
	f.Var((*appendValue)(&rp.dns), "dns", "name server IP for the pod (repeatable), or host, or none (default: prepare's)")
	f.Var((*appendValue)(&rp.dnsSearch), "dns-search", "DNS search domain (repeatable)")
	f.Var((*appendValue)(&rp.dnsOpt), "dns-opt", "resolv.conf option (repeatable)")
	f.StringVar(&rp.dnsDomain, "dns-domain", "", "DNS domain")
	f.Var((*appendValue)(&rp.hosts), "hosts-entry", "an /etc/hosts entry IP=HOST[,HOST...] (repeatable), or host")
	registerLogFlags(f, &rp.logSize, &rp.logPrefix)
	f.StringVar(&rp.mdsRegister, "mds-register", "auto", "register the pod with the metadata service: auto (when it runs), true (fail if it does not), false")
	f.Lookup("mds-register").NoOptDefVal = "true"
}
