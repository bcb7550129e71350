// Package appcjson decodes untrusted appc JSON documents (image and pod
// manifests, isolator lists) with appc's types, turning the panics of
// appc's decoders on malformed input (an isolator without a "value"
// dereferences nil) into errors, and refusing the resource quantities that
// appc's quantity parser would spend unbounded time and memory on (an
// exponent of 44073714794496 makes it compute a number of that many
// digits).
package appcjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is returned when an appc decoder panicked on the input.
var ErrMalformed = errors.New("malformed appc document")

// Unmarshal decodes data into v (a *schema.ImageManifest,
// *schema.PodManifest, *types.Isolators, ...).
func Unmarshal(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	if err := checkQuantities(data); err != nil {
		return err
	}
	if u, ok := v.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(data)
	}
	return json.Unmarshal(data, v)
}

// maxQuantityLen and maxExponent bound a resource isolator's quantity
// strings: far beyond any real limit, far below what makes appc's parser
// slow.
const (
	maxQuantityLen = 64
	maxExponent    = 100
)

// checkQuantities finds every resource isolator in the document (an
// object with a "name" starting with "resource/" and an object "value")
// and refuses a string of its value that is too long or whose decimal
// exponent is out of range. A document that is not JSON is left to the
// decoder.
func checkQuantities(data []byte) error {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	var walk func(any) error
	walk = func(n any) error {
		switch n := n.(type) {
		case []any:
			for _, e := range n {
				if err := walk(e); err != nil {
					return err
				}
			}
		case map[string]any:
			if name, _ := n["name"].(string); strings.HasPrefix(name, "resource/") {
				if val, ok := n["value"].(map[string]any); ok {
					for k, q := range val {
						if s, ok := q.(string); ok {
							if err := checkQuantity(s); err != nil {
								return fmt.Errorf("%w: isolator %s: %s %q: %v", ErrMalformed, name, k, s, err)
							}
						}
					}
				}
			}
			for _, e := range n {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(doc)
}

func checkQuantity(s string) error {
	if len(s) > maxQuantityLen {
		return fmt.Errorf("longer than %d characters", maxQuantityLen)
	}
	i := strings.IndexAny(s, "eE")
	if i < 0 || strings.HasSuffix(s, "Ei") {
		return nil // no exponent ("1E" alone, "2Ei" are suffixes)
	}
	exp := s[i+1:]
	if exp == "" {
		return nil
	}
	n, err := strconv.Atoi(exp)
	if err != nil {
		return nil // not an exponent: the quantity parser says what is wrong
	}
	if n > maxExponent || n < -maxExponent {
		return fmt.Errorf("exponent %d out of range (at most ±%d)", n, maxExponent)
	}
	return nil
}
