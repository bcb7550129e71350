package stage0

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/quantity"
)

// Bounds of --memory and --cpu. Below MinMemory not even stage1's
// launcher, which runs in the app's cgroup until it execs the app, fits
// (the app is OOM-killed before it starts, exit 137); below MinCPU the
// kernel refuses the CFS quota (1 ms per 100 ms period). The maxima are
// what the kernel's counters hold: bigger values used to wrap around.
const (
	MinMemory = 8 << 20
	MaxMemory = math.MaxInt64
	MinCPU    = 10            // millicores
	MaxCPU    = 1_000_000_000 // millicores: a million CPUs
)

// MemoryIsolator checks a --memory value and returns its isolator, with
// the limit written in bytes.
func MemoryIsolator(s string) (*types.Isolator, error) {
	n, err := quantity.Int(s, MinMemory, MaxMemory)
	if err != nil {
		return nil, limitError(s, err, "128M, 1Gi", quantity.Format(MinMemory, 1))
	}
	q := strconv.FormatInt(n, 10)
	r, err := types.NewResourceMemoryIsolator(q, q)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	iso := r.AsIsolator()
	return &iso, nil
}

// CPUIsolator checks a --cpu value and returns its isolator, with the
// limit written in millicores.
func CPUIsolator(s string) (*types.Isolator, error) {
	n, err := quantity.Milli(s, MinCPU, MaxCPU)
	if err != nil {
		return nil, limitError(s, err, "750m, 2", quantity.Format(MinCPU, 1000))
	}
	q := strconv.FormatInt(n, 10) + "m"
	r, err := types.NewResourceCPUIsolator(q, q)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	iso := r.AsIsolator()
	return &iso, nil
}

func limitError(s string, err error, examples, min string) error {
	if errors.Is(err, quantity.ErrSyntax) {
		return fmt.Errorf("%q is not a quantity (e.g. %s)", s, examples)
	}
	if v, perr := quantity.Parse(s); perr == nil && v.Sign() <= 0 {
		return fmt.Errorf("%q must be positive", s)
	}
	if errors.Is(err, quantity.ErrRange) {
		return fmt.Errorf("%q: %v: an app cannot run with less than %s, and more does not fit the kernel's counter", s, err, min)
	}
	return fmt.Errorf("%q: %w", s, err)
}

// checkLimits applies the bounds of --memory and --cpu to an app's
// resource isolators, whoever wrote them (the image, --pod-manifest).
func checkLimits(app *types.App) error {
	for _, iso := range app.Isolators {
		switch v := iso.Value().(type) {
		case *types.ResourceMemory:
			if lim := v.Limit(); lim != nil {
				if _, err := MemoryIsolator(lim.String()); err != nil {
					return fmt.Errorf("isolator %s: %w", iso.Name, err)
				}
			}
		case *types.ResourceCPU:
			if lim := v.Limit(); lim != nil {
				if _, err := CPUIsolator(lim.String()); err != nil {
					return fmt.Errorf("isolator %s: %w", iso.Name, err)
				}
			}
		}
	}
	return nil
}
