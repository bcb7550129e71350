package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/pkg/termsafe"
	"github.com/rkt/rkt/stage0"
)

func podsDir() string { return filepath.Join(globalFlags.Dir, "pods") }

var listFlags struct {
	full, noLegend bool
	format         string
}

var cmdList = &cobra.Command{
	Use:   "list",
	Short: "List pods",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		pods, err := pod.List(podsDir())
		if err != nil {
			return err
		}
		rows := [][]string{}
		var js []*stage0.PodStatus
		for _, p := range pods {
			st := stage0.Status(p)
			js = append(js, st)
			uuid := st.UUID
			if !listFlags.full {
				uuid = uuid[:8]
			}
			created, started := "-", "-"
			if !st.Created.IsZero() {
				created = fmtAge(st.Created, listFlags.full)
			}
			if !st.Started.IsZero() {
				started = fmtAge(st.Started, listFlags.full)
			}
			if len(st.Apps) == 0 {
				rows = append(rows, []string{uuid, "-", "-", string(st.State), created, started, "-"})
			}
			for i, a := range st.Apps {
				img := a.Image
				if listFlags.full {
					img += " (" + a.ImageID + ")"
				}
				if i == 0 {
					rows = append(rows, []string{uuid, a.Name, img, string(st.State), created, started, strings.Join(st.Networks, ",")})
				} else {
					rows = append(rows, []string{"", a.Name, img, "", "", "", ""})
				}
			}
		}
		if js == nil {
			js = []*stage0.PodStatus{}
		}
		return printTable(cmd.OutOrStdout(), listFlags.format, listFlags.noLegend,
			[]string{"UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS"}, rows, js)
	},
}

func fmtAge(t time.Time, full bool) string {
	if full {
		return t.Local().Format(time.RFC3339Nano)
	}
	d := time.Since(t).Round(time.Second)
	return d.String() + " ago"
}

// uuidArg returns the UUID from args or --uuid-file.
func uuidArg(args []string, uuidFile string) ([]string, error) {
	if uuidFile != "" {
		if len(args) > 0 {
			return nil, usagef("give either UUIDs or --uuid-file, not both")
		}
		data, err := os.ReadFile(uuidFile)
		if err != nil {
			return nil, fmt.Errorf("--uuid-file: %w", err)
		}
		return []string{strings.TrimSpace(string(data))}, nil
	}
	if len(args) == 0 {
		return nil, usagef("give a pod UUID (see rkt list) or --uuid-file")
	}
	return args, nil
}

// podArg finds the one pod named by args or --uuid-file.
func podArg(args []string, uuidFile string) (*pod.Pod, error) {
	uuids, err := uuidArg(args, uuidFile)
	if err != nil {
		return nil, err
	}
	return pod.Get(podsDir(), uuids[0])
}

var statusFlags struct {
	wait, waitReady string
	uuidFile        string
	format          string
}

var cmdStatus = &cobra.Command{
	Use:   "status UUID",
	Short: "Print a pod's state, PID, times and app exit codes",
	Example: `  rkt status 5f8b1c2d
  # Wait up to a minute for the pod to exit, then print its exit codes:
  rkt status --wait=1m --uuid-file=/run/app.uuid`,
	Args: cobra.MaximumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		p, err := podArg(args, statusFlags.uuidFile)
		if err != nil {
			return err
		}
		if d, on, err := waitFlag(statusFlags.waitReady); err != nil {
			return usagef("--wait-ready: %v", err)
		} else if on {
			if err := waitReady(p, d); err != nil {
				return err
			}
		}
		if d, on, err := waitFlag(statusFlags.wait); err != nil {
			return usagef("--wait: %v", err)
		} else if on {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			if err := p.WaitExit(ctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("pod %s is still running after --wait=%s: wait longer, or stop it (rkt stop %s)", p.UUID, d, p.UUID)
				}
				return fmt.Errorf("waiting for pod %s to exit: %w", p.UUID, err)
			}
			if p, err = pod.Get(podsDir(), p.UUID); err != nil {
				return err
			}
		}
		st := stage0.Status(p)
		if statusFlags.format != "" {
			return printTable(cmd.OutOrStdout(), statusFlags.format, false, nil, nil, st)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "state=%s\n", st.State)
		if !st.Created.IsZero() {
			fmt.Fprintf(w, "created=%s\n", st.Created.Format(time.RFC3339Nano))
		}
		if !st.Started.IsZero() {
			fmt.Fprintf(w, "started=%s\n", st.Started.Format(time.RFC3339Nano))
		}
		fmt.Fprintf(w, "networks=%s\n", termsafe.String(strings.Join(st.Networks, ",")))
		if st.PID > 0 && st.State == pod.StateRunning {
			fmt.Fprintf(w, "pid=%d\n", st.PID)
		}
		exited := st.State != pod.StateRunning && st.State != pod.StatePrepared && st.State != pod.StatePreparing && st.State != pod.StateEmbryo
		fmt.Fprintf(w, "exited=%t\n", exited)
		for _, a := range st.Apps {
			if a.ExitCode != nil {
				fmt.Fprintf(w, "app-%s=%d\n", a.Name, *a.ExitCode)
			}
			if a.Reason != "" {
				fmt.Fprintf(w, "app-%s-reason=%s\n", a.Name, termsafe.String(a.Reason))
			}
		}
		return nil
	},
}

// waitFlag parses --wait / --wait-ready: "", "false" = off; "true" = 10 min.
func waitFlag(s string) (time.Duration, bool, error) {
	switch s {
	case "", "false":
		return 0, false, nil
	case "true":
		return 10 * time.Minute, true, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%q: want true, false or a duration", s)
	}
	return d, true, nil
}

// waitReady waits until the pod's supervisor reports ready.
func waitReady(p *pod.Pod, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		q, err := pod.Get(podsDir(), p.UUID)
		if err != nil {
			return err
		}
		if _, err := os.Readlink(filepath.Join(q.Path(), stage1abi.SupervisorStatus)); err == nil {
			return nil
		}
		if q.Phase != pod.PhaseRun && q.Phase != pod.PhasePrepare && q.Phase != pod.PhasePrepared {
			return fmt.Errorf("pod %s is %s: it will not become ready", q.UUID, q.State())
		}
		if q.Phase == pod.PhaseRun && !q.Locked {
			return fmt.Errorf("pod %s exited before it was ready", q.UUID)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s not ready after %s", q.UUID, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var catManifestFlags struct {
	pretty   bool
	uuidFile string
}

var cmdCatManifest = &cobra.Command{
	Use:   "cat-manifest UUID",
	Short: "Print a pod's manifest",
	Args:  cobra.MaximumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		p, err := podArg(args, catManifestFlags.uuidFile)
		if err != nil {
			return err
		}
		data, err := stage0.Manifest(p)
		if err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), data, catManifestFlags.pretty)
	},
}

var stopFlags struct {
	force    bool
	uuidFile string
	timeout  time.Duration
}

var cmdStop = &cobra.Command{
	Use:     "stop UUID...",
	Short:   "Stop running pods (SIGTERM to the apps, SIGKILL after a grace period; --force: SIGKILL now)",
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		if stopFlags.timeout < 0 {
			return usagef("--timeout=%v: want a positive duration such as 30s", stopFlags.timeout)
		}
		uuids, err := uuidArg(args, stopFlags.uuidFile)
		if err != nil {
			return err
		}
		opts := stage0.StopOptions{Force: stopFlags.force, Timeout: stopFlags.timeout}
		return eachPod(cmd, uuids, "%s\n", func(u string, err error) string {
			return fmt.Sprintf("stopping pod %s: %v", u, err)
		}, func(p *pod.Pod) error { return stage0.Stop(context.Background(), p, opts) })
	},
}

// eachPod applies fn to the pods named by uuids, printing each done pod's
// UUID with okFormat and each failure with failMsg; it fails (254) if any
// pod failed, after trying them all.
func eachPod(cmd *cobra.Command, uuids []string, okFormat string, failMsg func(uuid string, err error) string, fn func(*pod.Pod) error) error {
	failed := false
	for _, u := range uuids {
		p, err := pod.Get(podsDir(), u)
		if err == nil {
			err = fn(p)
		}
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "rkt: %s\n", termsafe.String(failMsg(u, err)))
			failed = true
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), okFormat, p.UUID)
	}
	if failed {
		return &exitError{code: exitFailure}
	}
	return nil
}

var gcFlags struct {
	grace, expirePrepared time.Duration
	markOnly              bool
}

var cmdGC = &cobra.Command{
	Use:   "gc",
	Short: "Collect exited pods: mark them, then remove those marked longer than the grace period",
	Example: `  # What rkt-gc.service runs (exit status 254 when a pod could not be collected):
  rkt gc --grace-period=30m

  # Remove every exited pod now:
  rkt gc --grace-period=0s`,
	Args:    cobra.NoArgs,
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx, cancel := signalContext()
		defer cancel()
		rep, err := stage0.GC(ctx, podsDir(), stage0.GCOptions{GracePeriod: gcFlags.grace,
			ExpirePrepared: gcFlags.expirePrepared, MarkOnly: gcFlags.markOnly, Debug: globalFlags.Debug,
			LocalConfig: globalFlags.LocalConfigDir})
		if rep != nil {
			for _, u := range rep.Marked {
				fmt.Fprintf(cmd.OutOrStdout(), "moving pod %q to garbage\n", u)
			}
			for _, u := range rep.Removed {
				fmt.Fprintf(cmd.OutOrStdout(), "garbage: removed pod %q\n", u)
			}
			for u, e := range rep.Failed {
				// Busy pods wait for the next gc; gone or moved ones another gc took.
				if !stage0.Benign(e) {
					fmt.Fprintf(cmd.ErrOrStderr(), "rkt: gc: could not collect pod %s: %s\n", u, termsafe.String(e.Error()))
				}
			}
			for u, e := range rep.Incomplete {
				fmt.Fprintf(cmd.ErrOrStderr(), "rkt: gc: pod %s: %s\n", u, termsafe.String(e.Error()))
			}
		}
		if err == nil && rep != nil && !rep.Collected() {
			// So that rkt-gc.service shows the failure.
			return &exitError{code: exitFailure}
		}
		return err
	},
}

var rmFlags struct {
	uuidFile string
	force    bool
}

var cmdRm = &cobra.Command{
	Use:   "rm UUID...",
	Short: "Remove exited pods now",
	Example: `  rkt rm 5f8b1c2d
  # A pod whose network teardown keeps failing:
  rkt rm --force 5f8b1c2d`,
	Long: `Remove exited pods now: run their stage1 gc (network teardown, unmounts,
cgroups), then delete them. A pod whose teardown fails stays, and the error
says what failed; rkt gc retries it and removes it anyway after a few failed
attempts. --force removes it at once, cleaning what can be cleaned and saying
what could not.`,
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		uuids, err := uuidArg(args, rmFlags.uuidFile)
		if err != nil {
			return err
		}
		opts := stage0.GCOptions{Debug: globalFlags.Debug, LocalConfig: globalFlags.LocalConfigDir, Force: rmFlags.force}
		return eachPod(cmd, uuids, "%q\n", func(_ string, err error) string { return "rm: " + err.Error() },
			func(p *pod.Pod) error {
				err := stage0.Remove(context.Background(), p, opts)
				var ie *stage0.IncompleteError
				if errors.As(err, &ie) {
					// Removed: say what was left, and count it as done.
					fmt.Fprintf(cmd.ErrOrStderr(), "rkt: rm: warning: %s\n", termsafe.String(err.Error()))
					return nil
				}
				return err
			})
	},
}

var enterFlags struct{ app string }

var cmdEnter = &cobra.Command{
	Use:   "enter [--app=NAME] UUID [CMD [ARGS...]]",
	Short: "Run a command in a running app's namespaces and root (default /bin/sh)",
	Long: `Run a command in a running app (default /bin/sh) as a process of the app: in its
namespaces, root and cgroups, with its environment, user, capabilities, no_new_privs
and seccomp filter, whatever the pod put at the command's path. The command gets
stdin, stdout and stderr only, in a session of its own (the terminal is not its
controlling terminal: an entered shell has no job control). With the fly stage1, the
command is only chrooted into the app's root, as root with the caller's privileges.`,
	Args:    cobra.MinimumNArgs(1),
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		p, err := pod.Get(podsDir(), args[0])
		if err != nil {
			return err
		}
		command := args[1:]
		if len(command) == 0 {
			command = []string{"/bin/sh"}
		}
		return stage0.Enter(p, enterFlags.app, command)
	},
}

func init() {
	f := cmdList.Flags()
	f.BoolVar(&listFlags.full, "full", false, "full UUIDs, image IDs and times")
	f.BoolVar(&listFlags.noLegend, "no-legend", false, "do not print the header")
	f.StringVar(&listFlags.format, "format", "", "output format: json or json-pretty")
	f = cmdStatus.Flags()
	f.StringVar(&statusFlags.wait, "wait", "false", "wait for the pod to exit: true, false or a duration")
	f.Lookup("wait").NoOptDefVal = "true"
	f.StringVar(&statusFlags.waitReady, "wait-ready", "false", "wait for the pod to be ready: true, false or a duration")
	f.Lookup("wait-ready").NoOptDefVal = "true"
	f.StringVar(&statusFlags.uuidFile, "uuid-file", "", "read the UUID from this file")
	f.StringVar(&statusFlags.format, "format", "", "output format: json or json-pretty")
	cmdCatManifest.Flags().BoolVar(&catManifestFlags.pretty, "pretty-print", true, "indent the JSON")
	cmdCatManifest.Flags().StringVar(&catManifestFlags.uuidFile, "uuid-file", "", "read the UUID from this file")
	cmdStop.Flags().BoolVar(&stopFlags.force, "force", false, "SIGKILL the apps at once")
	cmdStop.Flags().DurationVar(&stopFlags.timeout, "timeout", 0, "SIGKILL the apps this long after the SIGTERM (e.g. 30s), in place of the pod's --stop-timeout (default 10s)")
	cmdStop.Flags().StringVar(&stopFlags.uuidFile, "uuid-file", "", "read the UUID from this file")
	f = cmdGC.Flags()
	f.DurationVar(&gcFlags.grace, "grace-period", 30*time.Minute, "how long exited pods stay before removal")
	f.DurationVar(&gcFlags.expirePrepared, "expire-prepared", 24*time.Hour, "how long prepared pods may wait to be run")
	f.BoolVar(&gcFlags.markOnly, "mark-only", false, "only mark exited pods (e.g. in ExecStopPost=)")
	cmdRm.Flags().StringVar(&rmFlags.uuidFile, "uuid-file", "", "read the UUID from this file")
	cmdRm.Flags().BoolVar(&rmFlags.force, "force", false, "remove the pod even if its teardown (stage1 gc) fails")
	cmdEnter.Flags().StringVar(&enterFlags.app, "app", "", "the app to enter (needed when the pod has several)")
	cmdEnter.Flags().SetInterspersed(false)
	cmdRkt.AddCommand(cmdList, cmdStatus, cmdCatManifest, cmdStop, cmdGC, cmdRm, cmdEnter)
}
