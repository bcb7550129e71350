package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"golang.org/x/term"

	"github.com/rkt/rkt/gpg"
	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/stage0"
	"github.com/rkt/rkt/stage0/discovery"
)

// configureTrust gives the fetcher its signature verifier, appc discovery
// and the auth.d credentials for downloads.
func configureTrust(f *stage0.Fetcher, stdin io.Reader, stderr io.Writer) error {
	opts, err := discoveryOptions(false)
	if err != nil {
		return err
	}
	if opts.Header != nil {
		f.HTTP.Header = func(u *url.URL) http.Header { return opts.Header(u.Hostname()) }
	}
	f.Discover = func(ctx context.Context, ref aci.NameLabels) (string, string, error) {
		eps, err := discovery.DiscoverImage(ctx, ref.Name, ref.Labels, opts)
		if err != nil {
			return "", "", fmt.Errorf("image %s: %w", ref, err)
		}
		return eps[0].ACI, eps[0].ASC, nil
	}
	// Trust messages go to stderr: fetch's stdout is the image ID alone.
	f.Verifier = &verifier{ks: newKeystore(), truster: &keyTruster{
		ks: newKeystore(), opts: opts, in: stdin, out: stderr, errOut: stderr,
	}, stdin: stdin}
	return nil
}

// verifier checks signatures against the trust store. When no key is
// trusted for an image's name, it offers the keys the name's discovery
// publishes (ac-discovery-pubkeys): on a terminal after a review, or
// without asking with --trust-keys-from-https.
type verifier struct {
	ks      *gpg.Keystore
	truster *keyTruster
	stdin   io.Reader
}

func (v *verifier) Verify(ctx context.Context, name string, image io.ReadSeeker, sig io.Reader) (string, error) {
	sigData, err := io.ReadAll(io.LimitReader(sig, gpg.MaxSignatureSize+1))
	if err != nil {
		return "", err
	}
	key, err := v.ks.CheckSignature(ctx, name, image, bytesReader(sigData))
	if errors.Is(err, gpg.ErrNoTrustedKeys) && v.mayDiscoverKeys() {
		if n, derr := v.truster.discoverAndTrust(ctx, name); derr == nil && n > 0 {
			if _, serr := image.Seek(0, io.SeekStart); serr != nil {
				return "", serr
			}
			key, err = v.ks.CheckSignature(ctx, name, image, bytesReader(sigData))
		}
		// Otherwise the original error says how to trust a key by hand.
	}
	if err != nil {
		return "", err
	}
	return key.Fingerprint, nil
}

func (v *verifier) mayDiscoverKeys() bool {
	if globalFlags.TrustKeysFromHTTPS {
		return true
	}
	f, ok := v.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
