package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/stage0"
)

var exportFlags struct {
	app       string
	overwrite bool
}

var cmdExport = &cobra.Command{
	Use:   "export [--app=NAME] UUID OUTPUT.aci",
	Short: "Write an exited pod's app, with the changes it made, as an image",
	Args:  cobra.ExactArgs(2),
	RunE: func(cmd *cobra.Command, args []string) error {
		p, err := pod.Get(podsDir(), args[0])
		if err != nil {
			return err
		}
		return writeFileAtomic(args[1], exportFlags.overwrite, func(w io.Writer) error {
			return stage0.Export(p, exportFlags.app, w)
		})
	},
}

func init() {
	cmdExport.Flags().StringVar(&exportFlags.app, "app", "", "the app to export (needed when the pod has several)")
	cmdExport.Flags().BoolVar(&exportFlags.overwrite, "overwrite", false, "replace the output file if it exists")
	cmdRkt.AddCommand(cmdExport)
}
