package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/pkg/mds"
)

var mdsFlags struct {
	port    int
	listen  []string
	socket  string
	keyFile string
}

var cmdMetadataService = &cobra.Command{
	Use:   "metadata-service",
	Short: "Run the appc metadata service for the pods of this host (docs/metadata-service.md)",
	Long: `Run the appc metadata service: pods registered with it (rkt run
--mds-register) reach it at $AC_METADATA_URL for their manifests,
annotations and HMAC identity. rkt registers pods over a root-only unix
socket; pods reach the service on loopback (--net=host) or on their
network's gateway address. Run it once per host, or socket-activated by
rkt-metadata.socket.`,
	Args:    cobra.NoArgs,
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		if mdsFlags.port <= 0 || mdsFlags.port > 65535 {
			return usagef("--listen-port=%d: want a port between 1 and 65535", mdsFlags.port)
		}
		ctx, cancel := signalContext()
		defer cancel()
		key := mdsFlags.keyFile
		if key == "" {
			key = filepath.Join(globalFlags.Dir, "metadata-svc", "hmac-key")
		}
		return mds.Serve(ctx, mds.Config{
			Socket: mdsFlags.socket, Listen: mdsFlags.listen, Port: mdsFlags.port,
			KeyFile: key, DataDirs: []string{globalFlags.Dir},
			Logf: func(format string, a ...any) { fmt.Fprintf(cmd.ErrOrStderr(), "rkt: "+format+"\n", a...) },
		})
	},
}

func init() {
	f := cmdMetadataService.Flags()
	f.IntVar(&mdsFlags.port, "listen-port", mds.DefaultPort, "TCP port the pods reach the service on")
	f.StringSliceVar(&mdsFlags.listen, "listen", mds.DefaultListen, "addresses to serve pods on (loopback, and the host side of the pods' networks)")
	f.StringVar(&mdsFlags.socket, "socket", mds.SocketPath(), "registration socket (when not socket-activated)")
	f.StringVar(&mdsFlags.keyFile, "key-file", "", "the host's HMAC key (default <dir>/metadata-svc/hmac-key; made if missing)")
	cmdRkt.AddCommand(cmdMetadataService)
}
