package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/stage0"
)

var exportFlags struct {
	app, uuidFile string
	overwrite     bool
}

var cmdExport = &cobra.Command{
	Use:   "export [--app=NAME] (UUID | --uuid-file=FILE) OUTPUT.aci",
	Short: "Write an exited pod's app, with the changes it made, as an image",
	Args:  cobra.RangeArgs(1, 2),
	RunE: func(cmd *cobra.Command, args []string) error {
		out := args[len(args)-1]
		p, err := podArg(args[:len(args)-1], exportFlags.uuidFile)
		if err != nil {
			return err
		}
		return writeFileAtomic(out, exportFlags.overwrite, func(w io.Writer) error {
			return stage0.Export(p, exportFlags.app, w)
		})
	},
}

func init() {
	cmdExport.Flags().StringVar(&exportFlags.app, "app", "", "the app to export (needed when the pod has several)")
	cmdExport.Flags().StringVar(&exportFlags.uuidFile, "uuid-file", "", "read the pod's UUID from this file")
	cmdExport.Flags().BoolVar(&exportFlags.overwrite, "overwrite", false, "replace the output file if it exists")
	cmdRkt.AddCommand(cmdExport)
}
