// Package quantity parses Kubernetes resource quantities ("128M", "16Mi",
// "750m", "1.5", "2e9") exactly, with big numbers, so that a value too
// large for the kernel's counters is refused instead of wrapping around
// (appc's parser turns 18446744073714794496 into 5 MiB).
package quantity

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// ErrSyntax is returned for a string that is not a quantity.
var ErrSyntax = errors.New("not a quantity (e.g. 128M, 16Mi, 1G, 750m)")

// ErrRange is returned for a quantity outside the range asked for.
var ErrRange = errors.New("out of range")

// maxExponent bounds the decimal exponent of "1e30"-style quantities, so
// that "1e999999999" is refused before a billion-digit number is built.
const maxExponent = 60

var suffixes = map[string]*big.Rat{
	"n": big.NewRat(1, 1_000_000_000), "u": big.NewRat(1, 1_000_000), "m": big.NewRat(1, 1000), "": big.NewRat(1, 1),
	"k": pow(10, 3), "M": pow(10, 6), "G": pow(10, 9), "T": pow(10, 12), "P": pow(10, 15), "E": pow(10, 18),
	"Ki": pow(2, 10), "Mi": pow(2, 20), "Gi": pow(2, 30), "Ti": pow(2, 40), "Pi": pow(2, 50), "Ei": pow(2, 60),
}

func pow(b, e int64) *big.Rat {
	return new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(b), big.NewInt(e), nil))
}

// Parse returns the exact value of a quantity: an optionally signed
// decimal number ("1", "1.5", ".5") followed by nothing, a decimal SI
// suffix (n u m k M G T P E), a binary one (Ki Mi Gi Ti Pi Ei) or a
// decimal exponent (e3, E-2).
func Parse(s string) (*big.Rat, error) {
	num, suffix := split(s)
	if num == "" || num == "+" || num == "-" || num == "." || strings.HasSuffix(num, "-.") || strings.HasSuffix(num, "+.") {
		return nil, ErrSyntax
	}
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, ErrSyntax
	}
	if mul, ok := suffixes[suffix]; ok {
		return v.Mul(v, mul), nil
	}
	if suffix[0] != 'e' && suffix[0] != 'E' {
		return nil, ErrSyntax
	}
	exp := suffix[1:]
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimPrefix(strings.TrimPrefix(exp, "-"), "+")
	if exp == "" || strings.Trim(exp, "0123456789") != "" {
		return nil, ErrSyntax
	}
	exp = strings.TrimLeft(exp, "0")
	if len(exp) > 3 {
		return nil, ErrRange
	}
	var e int64
	for _, c := range exp {
		e = e*10 + int64(c-'0')
	}
	if e > maxExponent {
		return nil, ErrRange
	}
	m := pow(10, e)
	if neg {
		return v.Quo(v, m), nil
	}
	return v.Mul(v, m), nil
}

// split cuts s into its number (sign, digits and one dot) and suffix.
func split(s string) (num, suffix string) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	dot := false
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' && !dot) {
		if s[i] == '.' {
			dot = true
		}
		i++
	}
	return s[:i], s[i:]
}

// Int parses a quantity of whole units (bytes), rounding a fraction up
// as Kubernetes does, and requires it in [min, max].
func Int(s string, min, max int64) (int64, error) {
	return scaled(s, 1, min, max)
}

// Milli parses a quantity in thousandths (CPU: "750m" is 750, "2" is
// 2000), rounding up, and requires it in [min, max].
func Milli(s string, min, max int64) (int64, error) {
	return scaled(s, 1000, min, max)
}

func scaled(s string, scale, min, max int64) (int64, error) {
	v, err := Parse(s)
	if err != nil {
		return 0, err
	}
	v.Mul(v, big.NewRat(scale, 1))
	// Round up: ceil(a/b) for the positive case, truncation towards
	// zero below it is fine since such values fail min >= 1 anyway.
	n := new(big.Int).Quo(v.Num(), v.Denom())
	if v.Sign() > 0 && !v.IsInt() {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() || n.Int64() < min || n.Int64() > max {
		return 0, fmt.Errorf("%w: %s is not between %s and %s", ErrRange, s, Format(min, scale), Format(max, scale))
	}
	return n.Int64(), nil
}

// Format writes n units of 1/scale as a short quantity, for messages:
// binary suffixes for whole units (4Mi), "m" for thousandths.
func Format(n, scale int64) string {
	if scale == 1000 {
		if n%1000 == 0 {
			return fmt.Sprint(n / 1000)
		}
		return fmt.Sprintf("%dm", n)
	}
	for _, u := range []struct {
		s string
		v int64
	}{{"Ei", 1 << 60}, {"Pi", 1 << 50}, {"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return fmt.Sprintf("%d%s", n/u.v, u.s)
		}
	}
	return fmt.Sprint(n)
}
