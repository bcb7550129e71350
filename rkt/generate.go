package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/stage0"
)

var generateFlags struct {
	output, description, rkt string
	overwrite                bool
}

var cmdGenerate = &cobra.Command{
	Use:   "generate",
	Short: "Write configuration for other tools",
}

var cmdGenerateSystemd = &cobra.Command{
	Use:   "systemd [--output=FILE] (UUID | [pod flags] IMAGE [app flags] [-- ARGS... [---]] ...)",
	Short: "Write a systemd service unit that runs a pod with rkt run",
	Long: `Write a systemd service unit that runs a pod with rkt run, to stdout or --output.

With a UUID, the unit runs the pod's image(s) with the flags the pod was
made with (rkt run and prepare record their command line in the pod
manifest, annotation rkt.dev/run-args): each start makes a new pod. With an
image and flags, as rkt run takes them, the unit runs those; the flags are
checked now, and relative paths made absolute. Global flags given to
rkt generate (--dir, --insecure-options, ...) are passed on.

The unit is set up as dist/systemd/example-pod.service: Type=notify,
Delegate=yes, KillMode=mixed, SuccessExitStatus=143 (the exit of an app
stopped by SIGTERM), --pull-policy=new unless the flags give
another, and rkt gc --mark-only after the pod stops. --interactive is
dropped (a unit has no terminal). Each argument is quoted for ExecStart=.`,
	Args: cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		ra, err := generateRunArgs(cmd, args)
		if err != nil {
			return err
		}
		rkt := generateFlags.rkt
		if rkt == "" {
			if rkt, err = os.Executable(); err != nil {
				return err
			}
			if real, err := filepath.EvalSymlinks(rkt); err == nil {
				rkt = real
			}
		}
		if !filepath.IsAbs(rkt) {
			return usagef("--rkt=%s: want an absolute path", rkt)
		}
		o := stage0.UnitOptions{Rkt: rkt, Description: generateFlags.description, Args: *ra}
		if generateFlags.output == "" {
			return stage0.WriteUnit(cmd.OutOrStdout(), o)
		}
		return writeFileAtomic(generateFlags.output, generateFlags.overwrite, func(w io.Writer) error {
			return stage0.WriteUnit(w, o)
		})
	},
}

// generateRunArgs returns the run command line of a pod (one argument that
// names a pod) or of the flags and images given, after checking them.
func generateRunArgs(cmd *cobra.Command, args []string) (*stage0.RunArgs, error) {
	global := globalArgs(cmd)
	if len(args) == 1 && len(runArgs(cmd, nil, generateOwnFlags).Run) == 0 {
		p, err := pod.Get(podsDir(), args[0])
		if err == nil {
			ra, err := stage0.RunArgsOf(p)
			if err != nil {
				return nil, err
			}
			if ra.Global == nil {
				ra.Global = global
			}
			return ra, nil
		}
		if !errors.Is(err, pod.ErrNotFound) {
			return nil, err
		}
	}
	pf := generatePodFlags
	ra := runArgs(cmd, args, generateOwnFlags) // before parseApps adds the pod flags after the images
	apps, err := parseApps(args, pf, true)
	if err != nil {
		return nil, err
	}
	if len(apps) == 0 && pf.podManifest == "" {
		return nil, usagef("no pod %q and no image given: give a pod UUID, or an image and rkt run flags", args[0])
	}
	if _, err := pf.podSpec(apps); err != nil {
		return nil, err
	}
	return ra, nil
}

// generatePodFlags are rkt run's pod flags, given to rkt generate systemd.
var generatePodFlags = newPodFlags("new")

// generateOwnFlags are rkt generate systemd's flags that are not rkt run's.
var generateOwnFlags = map[string]bool{"output": true, "overwrite": true, "description": true, "rkt": true}

// globalArgs returns the global flags given on the command line, as
// --name=value arguments.
func globalArgs(cmd *cobra.Command) []string {
	var out []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if cmd.LocalFlags().Lookup(f.Name) == nil {
			out = append(out, flagArgs(f)...)
		}
	})
	return out
}

// runArgs is the command line of rkt run or prepare: the global and pod
// flags given, then args (images, app flags and arguments), with
// relative paths made absolute.
func runArgs(cmd *cobra.Command, args []string, skip map[string]bool) *stage0.RunArgs {
	var run []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if cmd.LocalFlags().Lookup(f.Name) != nil && !skip[f.Name] {
			run = append(run, flagArgs(f)...)
		}
	})
	run = append(run, args...)
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	return &stage0.RunArgs{Global: globalArgs(cmd), Run: stage0.AbsRunArgs(run, cwd)}
}

// flagArgs returns a flag as it was given: one --name=value per value of a
// repeatable flag.
func flagArgs(f *pflag.Flag) []string {
	if a, ok := f.Value.(*appendValue); ok {
		out := make([]string, len(*a))
		for i, v := range *a {
			out[i] = "--" + f.Name + "=" + v
		}
		return out
	}
	return []string{"--" + f.Name + "=" + f.Value.String()}
}

func init() {
	f := cmdGenerateSystemd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&generateFlags.output, "output", "", "write the unit to this file instead of stdout")
	f.BoolVar(&generateFlags.overwrite, "overwrite", false, "replace the --output file if it exists")
	f.StringVar(&generateFlags.description, "description", "", "the unit's Description= (default: rkt pod)")
	f.StringVar(&generateFlags.rkt, "rkt", "", "rkt's path in ExecStart= (default: this rkt's)")
	generatePodFlags.register(f, true)
	f.Var((*appendValue)(&generatePodFlags.mounts), "mount", "volume=NAME,target=PATH for every app")
	cmdGenerate.AddCommand(cmdGenerateSystemd)
	cmdRkt.AddCommand(cmdGenerate)
}
