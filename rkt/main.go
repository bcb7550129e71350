// Command rkt is the command-line interface of rkt, a daemonless,
// pod-native container runtime: stage0 in rkt's terms. Each verb lives in
// its own file; the work behind them is done by the stage0, imagestore and
// gpg packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/pkg/termsafe"
)

// Exit codes. rkt's own failures exit 254 so that they do not clash with an
// app's exit code, which `rkt run` passes through.
const (
	exitFailure = stage1abi.ExitFailure
)

// usageError marks errors in the command line: they print the usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError asks main to exit with a code without printing anything more
// (the command already reported).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

var cmdRkt = &cobra.Command{
	Use:   "rkt",
	Short: "rkt, the pod-native container runtime",
	Long: `rkt runs pods: one or more apps sharing namespaces, each in its own root file
system, from signed images kept in a local content-addressed store. There is
no daemon: every command is a process and all state lives on disk.`,
	SilenceUsage:      true,
	SilenceErrors:     true,
	DisableAutoGenTag: true,
	PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
		// Paths are handed to stage1, which runs in the pod directory:
		// make them absolute.
		for _, p := range []*string{&globalFlags.Dir, &globalFlags.SystemConfigDir, &globalFlags.LocalConfigDir, &globalFlags.UserConfigDir} {
			if *p != "" {
				abs, err := filepath.Abs(*p)
				if err != nil {
					return err
				}
				*p = abs
			}
		}
		// paths.d may move the data dir when --dir is not given.
		if !cmd.Flags().Changed("dir") {
			c, err := loadConfig()
			if err != nil {
				return err
			}
			if c.Paths.Data != "" {
				globalFlags.Dir = c.Paths.Data
			}
		}
		return nil
	},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	setupCompletion()
	cmdRkt.SetArgs(args)
	cmdRkt.SetOut(stdout)
	cmdRkt.SetErr(stderr)
	cmdRkt.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if strings.HasPrefix(err.Error(), "bad flag syntax: ---") {
			return usagef("%q separates apps: put it after an image and its arguments (IMAGE [app flags] [-- ARGS...] --- IMAGE2)", "---")
		}
		return &usageError{msg: err.Error()}
	})
	cmd, err := cmdRkt.ExecuteC()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "rkt: %s\n", termsafe.String(err.Error()))
	var ue *usageError
	var afe *appFlagError
	switch {
	case errors.As(err, &afe):
		fmt.Fprintf(stderr, "Run '%s --help' for the app flags.\n", cmd.CommandPath())
	case isCobraUsageError(err):
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return exitFailure
}

// isCobraUsageError recognises cobra's own argument errors (unknown
// command, wrong number of arguments), which it returns as plain errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "received ", "unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// ensureSuperuser fails commands that need root with a clear message.
func ensureSuperuser(cmd *cobra.Command, args []string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: run it as root (e.g. with sudo)", cmd.CommandPath())
	}
	return nil
}
