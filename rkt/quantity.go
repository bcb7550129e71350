package main

import (
	"fmt"

	"github.com/appc/spec/schema/types/resource"
)

// parseQuantity parses a Kubernetes quantity ("128M", "16Mi", "1G") into
// bytes.
func parseQuantity(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity (e.g. 128M, 16Mi, 1G): %v", s, err)
	}
	v := q.Value()
	if v <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return v, nil
}
