//go:build mangen

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
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
		escapeForMan(cmdRkt, map[*pflag.Flag]bool{})
		if err := genManTree(cmdRkt, hdr, args[0]); err != nil {
			return fmt.Errorf("writing man pages: %w", err)
		}
		return nil
	},
}

func init() { cmdRkt.AddCommand(cmdGenMan) }

// escapeForMan makes the texts of c and its subcommands literal for the
// markdown cobra's man generator goes through (markdownLiteral): without
// it "rkt-<uuid>" loses "<uuid>" (an HTML tag) and "[,HOST...] (x)"
// becomes a link. It changes the commands, so only the mangen binary,
// which exits after writing the pages, calls it.
func escapeForMan(c *cobra.Command, done map[*pflag.Flag]bool) {
	c.Short = markdownLiteral(c.Short)
	c.Long = markdownLiteral(c.Long)
	if name, rest, ok := strings.Cut(c.Use, " "); ok {
		c.Use = name + " " + markdownLiteral(rest)
	}
	for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
		fs.VisitAll(func(f *pflag.Flag) {
			if !done[f] {
				done[f] = true
				f.Usage = markdownLiteral(f.Usage)
			}
		})
	}
	for _, sub := range c.Commands() {
		escapeForMan(sub, done)
	}
}

// genManTree writes a page per available command, as doc.GenManTree,
// with the roff made right (roffHyphens).
func genManTree(c *cobra.Command, hdr *doc.GenManHeader, dir string) error {
	if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
		return nil
	}
	for _, sub := range c.Commands() {
		if err := genManTree(sub, hdr, dir); err != nil {
			return err
		}
	}
	h := *hdr
	var buf bytes.Buffer
	if err := doc.GenMan(c, &h, &buf); err != nil {
		return err
	}
	name := strings.ReplaceAll(c.CommandPath(), " ", "-") + "." + hdr.Section
	return os.WriteFile(filepath.Join(dir, name), []byte(roffHyphens(buf.String())), 0o644)
}
