// Package appcjson decodes untrusted appc JSON documents (image and pod
// manifests, isolator lists) with appc's types, turning the panics of
// appc's decoders on malformed input (an isolator without a "value"
// dereferences nil) into errors.
package appcjson

import (
	"encoding/json"
	"errors"
	"fmt"
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
	if u, ok := v.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(data)
	}
	return json.Unmarshal(data, v)
}
