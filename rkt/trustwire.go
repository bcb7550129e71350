package main

import "github.com/rkt/rkt/stage0"

// configureTrust gives the fetcher its signature verifier and discovery.
// Until the trust store is wired in, fetching needs --insecure-options=image.
func configureTrust(f *stage0.Fetcher) error { return nil }
