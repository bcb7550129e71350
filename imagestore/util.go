package imagestore

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}
