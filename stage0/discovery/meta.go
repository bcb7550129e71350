package discovery

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

const (
	metaImage   = "ac-discovery"
	metaPubKeys = "ac-discovery-pubkeys"
)

// metaTag is one ac-discovery* meta tag: name="..." content="PREFIX VALUE".
type metaTag struct {
	name   string
	prefix string
	value  string // URL template or URL
	bad    string // set when content is malformed
}

// parseMeta extracts the ac-discovery and ac-discovery-pubkeys meta tags
// of an HTML page. Tags with malformed content are returned with bad set.
func parseMeta(page []byte) []metaTag {
	var tags []metaTag
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return tags // io.EOF or a broken page: keep what was found
		case html.StartTagToken, html.SelfClosingTagToken:
			tn, hasAttr := z.TagName()
			if string(tn) != "meta" || !hasAttr {
				continue
			}
			var name, content string
			var haveContent bool
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				switch string(k) {
				case "name":
					name = string(v)
				case "content":
					content, haveContent = string(v), true
				}
			}
			if name != metaImage && name != metaPubKeys {
				continue
			}
			t := metaTag{name: name}
			f := strings.Fields(content)
			switch {
			case !haveContent:
				t.bad = fmt.Sprintf("<meta name=%q> has no content attribute", name)
			case len(f) != 2:
				t.bad = fmt.Sprintf("<meta name=%q content=%q>: want content=\"PREFIX URL\", got %d fields", name, content, len(f))
			default:
				t.prefix, t.value = f[0], f[1]
			}
			tags = append(tags, t)
		}
	}
}

// templateVar matches a {variable} left in a URL template.
var templateVar = regexp.MustCompile(`\{[^{}]*\}`)

// renderTemplate fills {name}, {ext} and the {label} variables of tpl.
// Label values are path-escaped. It fails if a variable has no value.
func renderTemplate(tpl, name, ext string, labels map[string]string) (string, error) {
	pairs := []string{"{name}", name, "{ext}", ext}
	for k, v := range labels {
		if k == "name" || k == "ext" {
			continue
		}
		pairs = append(pairs, "{"+k+"}", url.PathEscape(v))
	}
	out := strings.NewReplacer(pairs...).Replace(tpl)
	if left := templateVar.FindAllString(out, -1); len(left) > 0 {
		return "", fmt.Errorf("template %q uses %s, which has no value (give it as a label, e.g. NAME,%s=VALUE)", tpl, strings.Join(left, ", "), strings.Trim(left[0], "{}"))
	}
	return out, nil
}

// checkURL checks that a discovered URL is absolute and uses https (or
// http when allowed).
func checkURL(raw string, insecureHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("URL %q is not absolute", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && insecureHTTP:
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("URL %q uses plain http; refusing it without --insecure-options=http", raw)
	}
	return fmt.Errorf("URL %q: unsupported scheme %q", raw, u.Scheme)
}

// readPage reads at most limit bytes of a discovery page.
func readPage(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("page larger than %d bytes", limit)
	}
	return b, nil
}
