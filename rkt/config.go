package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/config"
)

var configFlags struct{ pretty, showSecrets bool }

var cmdConfig = &cobra.Command{
	Use:   "config",
	Short: "Print the merged configuration (system < local < user) as JSON",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		c, err := loadConfig()
		if err != nil {
			return err
		}
		if c.Paths.Data == "" {
			c.Paths.Data = globalFlags.Dir
		}
		if configFlags.showSecrets {
			c = c.WithSecrets()
		} else {
			c = c.Redacted()
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		if configFlags.pretty {
			enc.SetIndent("", "\t")
		}
		return enc.Encode(c)
	},
}

func loadConfig() (*config.Config, error) {
	return config.Load(globalFlags.SystemConfigDir, globalFlags.LocalConfigDir, globalFlags.UserConfigDir)
}

func init() {
	cmdConfig.Flags().BoolVar(&configFlags.pretty, "pretty-print", true, "indent the JSON")
	cmdConfig.Flags().BoolVar(&configFlags.showSecrets, "show-secrets", false, "print passwords and tokens instead of <redacted>")
	cmdRkt.AddCommand(cmdConfig)
}
