package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/termsafe"
	"github.com/rkt/rkt/stage0"
)

var fetchFlags struct {
	signature  string
	full       bool
	pullPolicy string
	maxSize    string
}

// newFetchCmd builds `rkt fetch` (and its alias `rkt image fetch`).
func newFetchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images into the store and print their IDs",
		Long: `Fetch images into the store, checking their signatures, and print their IDs.

IMAGE is a file path, a file://, https:// or http:// URL, or an image name
(name[:version][,label=value...]), found in the store or through appc
discovery.

By default a name the store already has is used as it is, without asking
the network (so fetch works while its origin is down); --pull-policy=update
asks the origin for a newer image. URLs and files are always asked again
(cheap: an unchanged image is not downloaded or read twice).`,
		Example: `  rkt fetch https://example.com/app-1.0-linux-amd64.aci
  rkt fetch --signature=app.aci.asc ./app.aci
  # A name: from the store if there, else through appc discovery:
  rkt fetch example.com/app:1.0
  rkt fetch --pull-policy=update example.com/app:1.0`,
		Args:    cobra.MinimumNArgs(1),
		PreRunE: ensureSuperuser,
		RunE:    runFetch,
	}
	addFetchFlags(c, "")
	c.Flags().BoolVar(&fetchFlags.full, "full", false, "print full image IDs")
	return c
}

func addFetchFlags(c *cobra.Command, defaultPolicy string) {
	c.Flags().StringVar(&fetchFlags.signature, "signature", "", "local detached signature of the (first) image")
	usage := "when to contact the image's origin: new, update or never"
	if defaultPolicy == "" {
		usage += " (default: new for names in the store, update for URLs and files)"
	}
	c.Flags().StringVar(&fetchFlags.pullPolicy, "pull-policy", defaultPolicy, usage)
	c.Flags().StringVar(&fetchFlags.maxSize, "max-size", "16Gi", "refuse images that unpack to more than this (Kubernetes quantity)")
}

func init() {
	cmdRkt.AddCommand(newFetchCmd())
	cmdImage.AddCommand(newFetchCmd())
}

// signalContext is cancelled by SIGINT/SIGTERM, so that interrupted
// commands unwind and leave the store clean.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func openStore() (*imagestore.Store, error) {
	s, err := imagestore.Open(filepath.Join(globalFlags.Dir, "cas"))
	if err != nil {
		return nil, fmt.Errorf("%w (is --dir=%s writable? fetching needs root or the rkt group)", err, globalFlags.Dir)
	}
	return s, nil
}

// newFetcher builds a Fetcher from the global and fetch flags.
func newFetcher(cmd *cobra.Command, s *imagestore.Store) (*stage0.Fetcher, error) {
	policy, err := stage0.ParsePullPolicy(fetchFlags.pullPolicy)
	if err != nil {
		return nil, usagef("--pull-policy: %v", err)
	}
	maxSize, err := parseQuantity(fetchFlags.maxSize)
	if err != nil {
		return nil, usagef("--max-size: %v", err)
	}
	io := &globalFlags.InsecureOptions
	f := &stage0.Fetcher{
		Store: s, PullPolicy: policy, InsecureHTTP: io.AllowHTTP(), InsecureTLS: io.SkipTLSCheck(),
		SkipVerify: io.SkipImageCheck(), Signature: fetchFlags.signature, MaxSize: maxSize,
		Warn: func(msg string) { fmt.Fprintf(cmd.ErrOrStderr(), "rkt: warning: %s\n", termsafe.String(msg)) },
	}
	if fh, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(fh.Fd())) {
		f.Progress = fh
	}
	io.warnSkipped(cmd.ErrOrStderr(), true)
	if err := configureTrust(f, cmd.InOrStdin(), cmd.ErrOrStderr()); err != nil {
		return nil, err
	}
	return f, nil
}

func runFetch(cmd *cobra.Command, args []string) error {
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openStore()
	if err != nil {
		return err
	}
	f, err := newFetcher(cmd, s)
	if err != nil {
		return err
	}
	for _, ref := range args {
		info, err := f.Fetch(ctx, ref)
		if err != nil {
			return err
		}
		id := info.Key
		if !fetchFlags.full {
			id = imagestore.ShortKey(id)
		}
		fmt.Fprintln(cmd.OutOrStdout(), id)
	}
	return nil
}
