package quantity

import (
	"math"
	"testing"
)

// FuzzInt: any string either fails or gives a value in range that
// survives a round trip through its decimal form; nothing panics and
// nothing wraps around.
func FuzzInt(f *testing.F) {
	for _, s := range []string{"128M", "16Mi", "1.5Ki", ".5", "2e3", "25e-1", "-1", "0", "9223372036854775807",
		"18446744073714794496", "1e999", "8Ei", "750m", "1n", "lots", "", "+.", "1e+", "00000000000000000001Ei"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, scale := range []int64{1, 1000} {
			n, err := scaled(s, scale, 1, math.MaxInt64)
			if err != nil {
				continue
			}
			if n < 1 {
				t.Fatalf("%q: %d below the minimum", s, n)
			}
			v, err := Parse(s)
			if err != nil {
				t.Fatalf("%q: scaled accepts what Parse refuses: %v", s, err)
			}
			if v.Sign() <= 0 {
				t.Fatalf("%q: %d from a value that is not positive", s, n)
			}
		}
		if n, err := Int(s, 1, math.MaxInt64); err == nil {
			back, err := Int(Format(n, 1), 1, math.MaxInt64)
			if err != nil || back != n {
				t.Fatalf("%q = %d, but %q = %d, %v", s, n, Format(n, 1), back, err)
			}
		}
	})
}
