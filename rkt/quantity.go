package main

import (
	"fmt"
	"math"

	"github.com/rkt/rkt/pkg/quantity"
)

// parseQuantity parses a Kubernetes quantity ("128M", "16Mi", "1G") into
// a positive number of bytes.
func parseQuantity(s string) (int64, error) {
	v, err := quantity.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity (e.g. 128M, 16Mi, 1G)", s)
	}
	if v.Sign() <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	n, err := quantity.Int(s, 1, math.MaxInt64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return n, nil
}
