package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/podlog"
	"github.com/rkt/rkt/pkg/termsafe"
	"github.com/rkt/rkt/stage0"
)

var logsFlags struct {
	app, since, uuidFile string
	follow, timestamps   bool
}

var cmdLogs = &cobra.Command{
	Use:   "logs [--app=NAME] [--follow] [--since=DURATION|TIME] UUID",
	Short: "Print the output of a pod's apps",
	Long: `Print what a pod's apps wrote on their stdout (to stdout) and stderr (to
stderr), from the log files stage1 keeps per app in the pod directory, while the
pod runs and after it exited, until it is garbage-collected. Each file is bounded
(rkt run --log-size, default 1 MiB, rotated once): the oldest lines of a verbose
app are gone. In a pod of several apps each line begins with the app's name,
unless --app picks one. Control characters are escaped. An app run with
--interactive had the terminal: its output is not logged.`,
	Args:              cobra.MaximumNArgs(1),
	ValidArgsFunction: completePodUUIDs,
	RunE: func(cmd *cobra.Command, args []string) error {
		p, err := podArg(args, logsFlags.uuidFile)
		if err != nil {
			return err
		}
		since, err := parseSince(logsFlags.since, time.Now())
		if err != nil {
			return usagef("--since: %v", err)
		}
		apps, err := stage0.PodApps(p)
		if err != nil {
			return err
		}
		prefix := len(apps) > 1 && logsFlags.app == ""
		ctx, cancel := signalContext()
		defer cancel()
		out := bufio.NewWriter(cmd.OutOrStdout())
		errOut := bufio.NewWriter(cmd.ErrOrStderr())
		defer out.Flush()
		defer errOut.Flush()
		opts := stage0.LogOptions{App: logsFlags.app, Since: since, Follow: logsFlags.follow}
		err = stage0.Logs(ctx, p, opts, func(l stage0.LogLine) error {
			w := out
			if l.Stream != podlog.Stdout {
				w = errOut
			}
			if logsFlags.timestamps {
				w.WriteString(l.Time.Local().Format(time.RFC3339Nano) + " ")
			}
			if prefix {
				w.WriteString(termsafe.String(l.App) + ": ")
			}
			w.WriteString(termsafe.String(l.Message) + "\n")
			if logsFlags.follow {
				// Keep the two streams in order as they come.
				if err := errOut.Flush(); err != nil {
					return err
				}
				return out.Flush()
			}
			return nil
		})
		if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return nil // ^C while following
		}
		return err
	},
}

// completePodUUIDs completes a pod UUID argument with the pods of the
// data directory.
func completePodUUIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pods, _ := pod.List(podsDir())
	var out []string
	for _, p := range pods {
		if strings.HasPrefix(p.UUID, toComplete) {
			out = append(out, p.UUID)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// parseSince parses --since: a duration back from now ("10m") or a
// time (RFC 3339, "2006-01-02T15:04:05Z07:00", fractions allowed).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration (10m, 1h30m) or a time (2006-01-02T15:04:05Z)", s)
	}
	return t, nil
}

func init() {
	f := cmdLogs.Flags()
	f.StringVar(&logsFlags.app, "app", "", "only this app's output")
	f.BoolVarP(&logsFlags.follow, "follow", "f", false, "go on printing what the apps write, until the pod exits")
	f.StringVar(&logsFlags.since, "since", "", "only what was written since: a duration back from now (10m) or a time (RFC 3339)")
	f.BoolVar(&logsFlags.timestamps, "timestamps", false, "begin each line with the time it was written")
	f.StringVar(&logsFlags.uuidFile, "uuid-file", "", "read the UUID from this file")
	cmdRkt.AddCommand(cmdLogs)
}
