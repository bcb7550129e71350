package stage2

import "github.com/rkt/rkt/pkg/caps"

// DefaultCapabilities is the appc default bounding set (see pkg/caps).
var DefaultCapabilities = caps.DefaultCapabilities

// CapNumbers converts capability names to sorted numbers (see pkg/caps).
func CapNumbers(names []string) ([]int, error) { return caps.CapNumbers(names) }

// CapName returns the name of capability c.
func CapName(c int) string { return caps.CapName(c) }
