// Package termsafe makes untrusted text (image names, labels,
// annotations, app names, anything an image or a remote server chose)
// safe to print on a terminal: control characters cannot move the cursor,
// retitle the window, forge table rows or hide text.
package termsafe

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// String returns s with every control character (C0 and C1, DEL, and
// the Unicode format characters that reorder or hide text, such as
// U+202E) and every invalid UTF-8 byte written as a Go escape (\x1b,
// \r, \n, \t, \u202e). Printable text, including non-ASCII letters, is
// left as it is. Backslashes are not escaped: the result is for eyes, not
// for parsing back.
func String(s string) string {
	if safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xf, 16))
		case unsafeRune(r):
			q := strconv.QuoteRune(r) // '\x1b', '\u202e', '\n'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Strings applies String to each element, in place, and returns ss.
func Strings(ss []string) []string {
	for i, s := range ss {
		ss[i] = String(s)
	}
	return ss
}

func safe(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			return false
		}
	}
	return true
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// JSON escapes what String escapes in a JSON document, as JSON escapes
// (\u001b, \u202e; a surrogate pair above U+FFFF; U+FFFD for invalid
// UTF-8), so that the output stays the same JSON value. Tab, newline and
// carriage return are kept: in valid JSON they are only whitespace
// between tokens (encoding/json already escapes them inside strings).
func JSON(data []byte) []byte {
	s := string(data)
	if safeJSON(s) {
		return data
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\ufffd`)
		case unsafeRune(r) && r != '\t' && r != '\n' && r != '\r':
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				writeU(&b, r1)
				writeU(&b, r2)
			} else {
				writeU(&b, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return []byte(b.String())
}

func writeU(b *strings.Builder, r rune) {
	const hex = "0123456789abcdef"
	b.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		b.WriteByte(hex[(r>>shift)&0xf])
	}
}

func safeJSON(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}
