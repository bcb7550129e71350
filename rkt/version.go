package main

import (
	"fmt"
	"runtime"

	"github.com/appc/spec/schema"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

var cmdVersion = &cobra.Command{
	Use:   "version",
	Short: "Print the rkt version",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "rkt Version: %s\n", version)
		fmt.Fprintf(w, "appc Version: %s\n", schema.AppContainerVersion)
		fmt.Fprintf(w, "Go Version: %s\n", runtime.Version())
		fmt.Fprintf(w, "Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
		return nil
	},
}

func init() { cmdRkt.AddCommand(cmdVersion) }
