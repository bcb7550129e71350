package quantity

import (
	"errors"
	"math"
	"testing"
)

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int64
		err  error
	}{
		{"128M", 128_000_000, nil},
		{"16Mi", 16 << 20, nil},
		{"1G", 1_000_000_000, nil},
		{"1.5Ki", 1536, nil},
		{".5Ki", 512, nil},
		{"0.5", 1, nil}, // rounded up
		{"2e3", 2000, nil},
		{"2E+3", 2000, nil},
		{"25e-1", 3, nil},
		{"+7", 7, nil},
		{"9223372036854775807", math.MaxInt64, nil},
		{"8Ei", 0, ErrRange},
		{"9223372036854775808", 0, ErrRange},
		{"18446744073714794496", 0, ErrRange}, // wrapped to 5 MiB in appc
		{"1e30", 0, ErrRange},
		{"1e999999999", 0, ErrRange},
		{"0", 0, ErrRange},
		{"-5M", 0, ErrRange},
		{"", 0, ErrSyntax},
		{"lots", 0, ErrSyntax},
		{"12XB", 0, ErrSyntax},
		{"1..2", 0, ErrSyntax},
		{".", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{"1e", 0, ErrSyntax},
		{"1e-", 0, ErrSyntax},
		{"0x10", 0, ErrSyntax},
		{"1/2", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
	} {
		got, err := Int(tc.s, 1, math.MaxInt64)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Int(%q) = %d, %v; want %v", tc.s, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Int(%q) = %d, %v; want %d", tc.s, got, err, tc.want)
		}
	}
}

func TestMilli(t *testing.T) {
	for s, want := range map[string]int64{"750m": 750, "2": 2000, "0.25": 250, "1n": 1, "1.0005": 1001} {
		if got, err := Milli(s, 1, math.MaxInt64); err != nil || got != want {
			t.Errorf("Milli(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	if _, err := Milli("9223372036854775807", 1, math.MaxInt64); !errors.Is(err, ErrRange) {
		t.Errorf("a CPU count whose thousandths overflow: %v", err)
	}
	if _, err := Milli("5m", 10, 1000); !errors.Is(err, ErrRange) {
		t.Errorf("below the minimum: %v", err)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n, scale int64
		want     string
	}{{8 << 20, 1, "8Mi"}, {1000, 1, "1000"}, {10, 1000, "10m"}, {2000, 1000, "2"}, {math.MaxInt64, 1, "9223372036854775807"}} {
		if got := Format(tc.n, tc.scale); got != tc.want {
			t.Errorf("Format(%d, %d) = %q, want %q", tc.n, tc.scale, got, tc.want)
		}
	}
}
