package termsafe

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"example.com/app":    "example.com/app",
		"café ünïcode 名前":    "café ünïcode 名前",
		"a\x1b]0;pwned\x07b": `a\x1b]0;pwned\ab`,
		"row\r\nforged\tcol": `row\r\nforged\tcol`,
		"\x9b31m":            `\x9b31m`, // invalid UTF-8 byte (a raw C1 CSI)
		"\u009b31m":          `\u009b31m`,
		"evil\u202etxt.exe":  `evil\u202etxt.exe`,
		"del\x7f":            `del\x7f`,
		"zero\u200bwidth":    `zero\u200bwidth`,
		"":                   "",
		`back\slash`:         `back\slash`,
		"\xff\xfe":           `\xff\xfe`,
		"\x1b[2J\x1b[H":      `\x1b[2J\x1b[H`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzString: the output never holds a control or format character nor
// invalid UTF-8, and text without them passes unchanged.
func FuzzString(f *testing.F) {
	for _, s := range []string{"plain", "a\x1b[31mred", "\r\n", "\u202e", "\xff", "名前\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("String(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("String(%q) = %q holds %U", s, out, r)
			}
		}
		if safe(s) && out != s {
			t.Fatalf("String(%q) changed safe text to %q", s, out)
		}
	})
}

func TestJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": "b"}`:                     `{"a": "b"}`,
		"{\n\t\"a\": \"\u009b31m\"\r\n}": "{\n\t\"a\": \"\\u009b31m\"\r\n}",
		`["x` + "\u202e" + `"]`:          `["x\u202e"]`,
		`["` + "\U000e0001" + `"]`:       `["\udb40\udc01"]`,
		`["` + "\x7f\xff" + `"]`:         `["\u007f\ufffd"]`,
	} {
		if got := string(JSON([]byte(in))); got != want {
			t.Errorf("JSON(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzJSON: valid JSON stays valid and decodes to the same value apart
// from the escaped characters; the output holds no control character
// other than JSON whitespace.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "[\"\u009b\"]", "[\"\u202e\", 1]", `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := JSON([]byte(s))
		for _, r := range string(out) {
			if (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) && r != '\t' && r != '\n' && r != '\r' {
				t.Fatalf("JSON(%q) = %q holds %U", s, out, r)
			}
		}
		var before, after any
		if json.Unmarshal([]byte(s), &before) != nil || !utf8.ValidString(s) {
			return
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("JSON(%q) = %q is not JSON: %v", s, out, err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("JSON(%q) = %q changed the value: %v -> %v", s, out, before, after)
		}
	})
}
