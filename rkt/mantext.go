package main

import "strings"

// The man pages are generated from the commands' texts through markdown
// (cobra's doc package and go-md2man): these helpers, used by the mangen
// build (docs.go), keep the texts literal there.

// markdownLiteral escapes what markdown would take for markup in s: link
// brackets, HTML tags, emphasis, code and escapes. Lines indented by four
// spaces or a tab (code blocks, as the app flags table of rkt run) are
// left alone: markdown does not unescape there.
func markdownLiteral(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t") {
			continue
		}
		var b strings.Builder
		for _, r := range l {
			if strings.ContainsRune("\\`*_[]<>", r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}

// roffHyphens turns the hyphens of text lines of a roff page into minus
// signs (\-), so that flags such as --net render, and copy, as typed: a
// plain "-" is a typographic hyphen in groff's UTF-8 output. Request
// lines (starting with "." or "'") and "\-" already there are kept.
func roffHyphens(page string) string {
	lines := strings.Split(page, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(l); j++ {
			switch {
			case l[j] == '\\' && j+1 < len(l):
				b.WriteByte(l[j])
				b.WriteByte(l[j+1])
				j++
			case l[j] == '-':
				b.WriteString(`\-`)
			default:
				b.WriteByte(l[j])
			}
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}
