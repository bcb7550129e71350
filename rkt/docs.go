//go:build mangen

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// cmdGenMan writes man pages for every command (make man). It is built
// only with -tags mangen (a separate binary), so that the rkt binary does
// not carry, and initialise, the documentation generator.
var cmdGenMan = &cobra.Command{
	Use:    "gen-man DIR",
	Short:  "Write man pages for all commands into DIR",
	Hidden: true,
	Args:   cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		if err := os.MkdirAll(args[0], 0o755); err != nil {
			return err
		}
		// A fixed date keeps the pages reproducible (make check-man).
		date := time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)
		hdr := &doc.GenManHeader{Title: "RKT", Section: "1", Source: "rkt", Manual: "rkt manual", Date: &date}
		if err := doc.GenManTree(cmdRkt, hdr, args[0]); err != nil {
			return fmt.Errorf("writing man pages: %w", err)
		}
		return nil
	},
}

func init() { cmdRkt.AddCommand(cmdGenMan) }
