package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rkt/rkt/pkg/termsafe"
)

// printTable writes rows as an aligned table (format ""), or jsonValue as
// JSON ("json", "json-pretty"). Every cell goes through termsafe.String
// and the JSON through termsafe.JSON: what an image or a key chose to
// call itself cannot forge rows or send the terminal escape sequences.
// All output of rkt/ that holds such text goes through termsafe.
func printTable(w io.Writer, format string, noLegend bool, header []string, rows [][]string, jsonValue any) error {
	switch format {
	case "json", "json-pretty":
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if format == "json-pretty" {
			enc.SetIndent("", "\t")
		}
		if err := enc.Encode(jsonValue); err != nil {
			return err
		}
		_, err := w.Write(termsafe.JSON(buf.Bytes()))
		return err
	case "", "table":
	default:
		return usagef("--format: unknown format %q (want json or json-pretty)", format)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if !noLegend {
		fmt.Fprintln(tw, strings.Join(termsafe.Strings(append([]string(nil), header...)), "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(termsafe.Strings(append([]string(nil), r...)), "\t"))
	}
	return tw.Flush()
}

// humanSize formats bytes as rkt does (KiB, MiB, ...).
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanTime formats a time for tables; zero times print as "never".
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05.000 -0700 MST")
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// printJSON writes a JSON document, indented when pretty.
func printJSON(w io.Writer, data []byte, pretty bool) error {
	if pretty {
		var buf bytes.Buffer
		if json.Indent(&buf, data, "", "\t") == nil {
			data = buf.Bytes()
		}
	}
	_, err := fmt.Fprintf(w, "%s\n", termsafe.JSON(data))
	return err
}
