package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rkt/rkt/gpg"
	"github.com/rkt/rkt/pkg/termsafe"
	"github.com/rkt/rkt/stage0/discovery"
)

// trustFlags are the flags of `rkt trust` and `rkt trust rm`.
type trustFlags struct {
	prefix            string
	root              bool
	skipReview        bool
	insecureAllowHTTP bool
	format            string
	noLegend          bool
}

// stdinIsTerminal reports whether r is an interactive terminal; a variable
// so that tests can drive the prompt through a pipe.
var stdinIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newTrustCmd() *cobra.Command {
	var fl trustFlags
	c := &cobra.Command{
		Use:   "trust [--prefix PREFIX | --root] [KEY-FILE|URL...]",
		Short: "Trust a key for verifying signed images",
		Long: `Trust the OpenPGP public keys in KEY-FILE or at URL (https, or http with
--insecure-allow-http) for images whose names start with PREFIX (by whole path
components), or for every image with --root. Each key's fingerprint and user
IDs are shown and must be confirmed on a terminal unless
--skip-fingerprint-review is given.

Without a key argument, the keys are discovered from PREFIX through the
ac-discovery-pubkeys meta tag. Keys are stored in
<local-config>/trustedkeys/{root.d,prefix.d/PREFIX}/<fingerprint>.

A key file named "list" or "rm" must be given as ./list or ./rm.`,
		Example: `  rkt trust --prefix example.com/app ./pubkey.asc
  rkt trust --prefix coreos.com/etcd
  rkt trust --root https://example.com/root.gpg`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return runTrust(ctx, cmd, &fl, args)
		},
	}
	f := c.Flags()
	f.StringVar(&fl.prefix, "prefix", "", "image name prefix the keys are trusted for (example.com/app)")
	f.BoolVar(&fl.root, "root", false, "trust the keys for every image")
	f.BoolVar(&fl.skipReview, "skip-fingerprint-review", false, "trust without showing the fingerprint and asking")
	f.BoolVar(&fl.insecureAllowHTTP, "insecure-allow-http", false, "allow plain http to discover and download keys")
	c.AddCommand(newTrustListCmd(), newTrustRmCmd())
	return c
}

func newTrustListCmd() *cobra.Command {
	var fl trustFlags
	c := &cobra.Command{
		Use:   "list",
		Short: "List trusted keys",
		Long: `List the trusted keys: the prefix each is trusted for ("*" for root keys),
fingerprint, user IDs, expiry, whether it is usable, and where it is stored
(vendor keys under --system-config, local ones under --local-config).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return runTrustList(ctx, cmd, &fl)
		},
	}
	c.Flags().StringVar(&fl.format, "format", "", "output format: json or json-pretty (default: a table)")
	c.Flags().BoolVar(&fl.noLegend, "no-legend", false, "do not print the table header")
	return c
}

func newTrustRmCmd() *cobra.Command {
	var fl trustFlags
	c := &cobra.Command{
		Use:   "rm FINGERPRINT... (--prefix PREFIX | --root)",
		Short: "Stop trusting keys",
		Long: `Stop trusting the keys with the given fingerprints for PREFIX, or as root keys
with --root. A local key file is deleted; a vendor key is masked by an empty
file of the same name under --local-config.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return runTrustRm(ctx, cmd, &fl, args)
		},
	}
	c.Flags().StringVar(&fl.prefix, "prefix", "", "image name prefix the key is trusted for")
	c.Flags().BoolVar(&fl.root, "root", false, "the key is a root key")
	return c
}

func init() {
	cmdRkt.AddCommand(newTrustCmd())
}

func newKeystore() *gpg.Keystore {
	return gpg.NewKeystore(globalFlags.SystemConfigDir, globalFlags.LocalConfigDir)
}

// discoveryOptions builds discovery options from the global flags, the
// RKT_DISCOVERY_PORT override and the auth.d credentials.
func discoveryOptions(allowHTTP bool) (discovery.Options, error) {
	port, err := discovery.PortFromEnv()
	if err != nil {
		return discovery.Options{}, err
	}
	cfg, err := loadConfig()
	if err != nil {
		return discovery.Options{}, err
	}
	return discovery.Options{
		InsecureHTTP: allowHTTP || globalFlags.InsecureOptions.AllowHTTP(),
		InsecureTLS:  globalFlags.InsecureOptions.SkipTLSCheck(),
		Port:         port,
		Header:       cfg.Header,
	}, nil
}

func checkTrustScope(prefix string, root bool) error {
	switch {
	case root && prefix != "":
		return usagef("give either --prefix or --root, not both")
	case !root && prefix == "":
		return usagef("give --prefix PREFIX (the image name prefix to trust the keys for) or --root")
	}
	if !root {
		if err := gpg.ValidatePrefix(prefix); err != nil {
			return usagef("--prefix: %v", err)
		}
	}
	return nil
}

func runTrust(ctx context.Context, cmd *cobra.Command, fl *trustFlags, args []string) error {
	if err := checkTrustScope(fl.prefix, fl.root); err != nil {
		return err
	}
	if len(args) == 0 && fl.root {
		return usagef("--root needs a key file or URL: root keys are never discovered")
	}
	opts, err := discoveryOptions(fl.insecureAllowHTTP)
	if err != nil {
		return err
	}
	t := &keyTruster{
		ks: newKeystore(), opts: opts, skipReview: fl.skipReview,
		in: cmd.InOrStdin(), out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(),
	}
	var n int
	if len(args) == 0 {
		n, err = t.discoverAndTrust(ctx, fl.prefix)
	} else {
		n, err = t.trustLocations(ctx, fl.prefix, fl.root, args)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("no key was trusted")
	}
	return nil
}

// keyTruster fetches keys, has them reviewed and stores them. fetch may
// use it to trust discovered keys when an image has no trusted key.
type keyTruster struct {
	ks         *gpg.Keystore
	opts       discovery.Options
	skipReview bool
	in         io.Reader
	out        io.Writer
	errOut     io.Writer
	answers    *bufio.Reader
}

// discoverAndTrust finds prefix's keys through ac-discovery-pubkeys and
// trusts the accepted ones. With --trust-keys-from-https, keys fetched over
// verified https (or any transport with --insecure-options=pubkey) are
// trusted without review, with a warning.
func (t *keyTruster) discoverAndTrust(ctx context.Context, prefix string) (int, error) {
	urls, err := discovery.DiscoverPubKeys(ctx, prefix, t.opts)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range urls {
		data, err := t.download(ctx, u)
		if err != nil {
			return n, err
		}
		auto := false
		if globalFlags.TrustKeysFromHTTPS {
			secure := strings.HasPrefix(u, "https://") && !t.opts.InsecureTLS
			auto = secure || globalFlags.InsecureOptions.AllowPubkeyFetch()
		}
		m, err := t.trustData(ctx, prefix, false, u, data, auto)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// trustLocations trusts the keys in files or at URLs.
func (t *keyTruster) trustLocations(ctx context.Context, prefix string, root bool, locations []string) (int, error) {
	n := 0
	for _, loc := range locations {
		data, err := t.load(ctx, loc)
		if err != nil {
			return n, err
		}
		m, err := t.trustData(ctx, prefix, root, loc, data, false)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (t *keyTruster) load(ctx context.Context, loc string) ([]byte, error) {
	if strings.Contains(loc, "://") {
		u, err := url.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("key location %q: %w", loc, err)
		}
		if u.Scheme != "file" {
			return t.download(ctx, loc)
		}
		loc = u.Path
	}
	f, err := os.Open(loc)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	defer f.Close()
	return readKeyData(f, loc)
}

func readKeyData(r io.Reader, loc string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, 2*gpg.MaxKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading key from %s: %w", loc, err)
	}
	if len(data) > 2*gpg.MaxKeySize {
		return nil, fmt.Errorf("key at %s is larger than %d bytes: is it really a public key?", loc, 2*gpg.MaxKeySize)
	}
	return data, nil
}

// download fetches a key over https (http only when allowed), with the
// discovery TLS settings and credentials.
func (t *keyTruster) download(ctx context.Context, loc string) ([]byte, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("key URL %q: %w", loc, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && t.opts.InsecureHTTP:
		fmt.Fprintf(t.errOut, "rkt: warning: fetching key %s over plain http\n", u.Redacted())
	case u.Scheme == "http":
		return nil, fmt.Errorf("refusing to fetch key %s over plain http: use https, or --insecure-allow-http", u.Redacted())
	default:
		return nil, fmt.Errorf("key URL %s: unsupported scheme %q (want https)", u.Redacted(), u.Scheme)
	}
	client := t.opts.Client()
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, fmt.Errorf("key URL %s: %w", u.Redacted(), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching key: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching key %s: HTTP %s", u.Redacted(), resp.Status)
	}
	return readKeyData(resp.Body, u.Redacted())
}

// trustData reviews and stores each key in data; it returns how many were
// trusted. A key the user declines is skipped.
func (t *keyTruster) trustData(ctx context.Context, prefix string, root bool, loc string, data []byte, auto bool) (int, error) {
	keys, err := gpg.SplitKeys(data)
	if err != nil {
		return 0, fmt.Errorf("key at %s: %w", loc, err)
	}
	n := 0
	for _, kd := range keys {
		k, err := gpg.ParsePublicKey(kd)
		if err != nil {
			return n, fmt.Errorf("key at %s: %w", loc, err)
		}
		ok, err := t.review(prefix, root, loc, k, auto)
		if err != nil {
			return n, err
		}
		if !ok {
			fmt.Fprintf(t.errOut, "Not trusting key %s.\n", k.Fingerprint)
			continue
		}
		stored, err := t.ks.Trust(ctx, prefix, root, kd)
		if err != nil {
			return n, err
		}
		n++
		if root {
			fmt.Fprintf(t.out, "Added root key at %q\n", stored.Path)
		} else {
			fmt.Fprintf(t.out, "Added key for prefix %q at %q\n", prefix, stored.Path)
		}
	}
	return n, nil
}

// review shows the key and asks whether to trust it.
func (t *keyTruster) review(prefix string, root bool, loc string, k *gpg.Key, auto bool) (bool, error) {
	scope := fmt.Sprintf("Prefix: %q", prefix)
	if root {
		scope = "Root key (trusted for every image)"
	}
	w := t.errOut
	if auto || t.skipReview {
		why := "--skip-fingerprint-review"
		if auto {
			why = "--trust-keys-from-https"
		}
		fmt.Fprintf(w, "rkt: warning: trusting key %s (%s) from %s without review (%s)\n", gpg.FormatFingerprint(k.Fingerprint), termsafe.String(strings.Join(k.UserIDs, ", ")), termsafe.String(loc), why)
		return true, nil
	}
	if !stdinIsTerminal(t.in) {
		return false, fmt.Errorf("refusing to trust key %s from %s without review: standard input is not a terminal; check the fingerprint yourself and pass --skip-fingerprint-review", k.Fingerprint, loc)
	}
	fmt.Fprintf(w, "%s\nKey: %q\nGPG key fingerprint is: %s\n", scope, loc, gpg.FormatFingerprint(k.Fingerprint))
	for _, id := range k.UserIDs {
		fmt.Fprintf(w, "\t%s\n", termsafe.String(id))
	}
	if k.Expires != nil {
		fmt.Fprintf(w, "Key expires on %s\n", k.Expires.UTC().Format("2006-01-02"))
	}
	if t.answers == nil {
		t.answers = bufio.NewReader(t.in)
	}
	for {
		fmt.Fprint(w, "Are you sure you want to trust this key (yes/no)? ")
		line, err := t.answers.ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "yes", "y":
			return true, nil
		case "no", "n":
			return false, nil
		}
		if err != nil {
			fmt.Fprintln(w)
			return false, fmt.Errorf("no answer for key %s: %w", k.Fingerprint, err)
		}
		fmt.Fprintln(w, `Please answer "yes" or "no".`)
	}
}

func runTrustList(ctx context.Context, cmd *cobra.Command, fl *trustFlags) error {
	keys, err := newKeystore().List(ctx)
	if err != nil {
		return err
	}
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		prefix := k.Prefix
		if k.Root {
			prefix = "*"
		}
		expires := "never"
		if k.Expires != nil {
			expires = k.Expires.UTC().Format("2006-01-02")
		}
		status := "ok"
		if k.Problem != "" {
			status = k.Problem
		}
		source := "local"
		if k.Vendor {
			source = "vendor"
		}
		rows = append(rows, []string{prefix, k.Fingerprint, strings.Join(k.UserIDs, "; "), expires, status, source, k.Path})
	}
	if keys == nil {
		keys = []gpg.Key{}
	}
	return printTable(cmd.OutOrStdout(), fl.format, fl.noLegend,
		[]string{"PREFIX", "FINGERPRINT", "USER IDS", "EXPIRES", "STATUS", "SOURCE", "PATH"}, rows, keys)
}

func runTrustRm(ctx context.Context, cmd *cobra.Command, fl *trustFlags, args []string) error {
	if err := checkTrustScope(fl.prefix, fl.root); err != nil {
		return err
	}
	ks := newKeystore()
	for _, fpr := range args {
		if err := ks.Remove(ctx, fpr, fl.prefix, fl.root); err != nil {
			return err
		}
		if fl.root {
			fmt.Fprintf(cmd.OutOrStdout(), "Removed root key %s\n", fpr)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "Removed key %s for prefix %q\n", fpr, fl.prefix)
		}
	}
	return nil
}
