package imagestore

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the index layout this rkt writes.
// Bump it and append to migrations when the layout changes.
//
// 2: format-neutral records (media type, refs, config, layers). An index
// of version 1 reads as version 2 (its rows are ACI records with one
// tree), so readers accept it before any writer migrated it; an older rkt
// refuses version 2, which it would misread (its gc would take layer trees
// for leftovers).
const SchemaVersion = 2

// minReadable is the oldest index version this rkt reads without a
// migration.
const minReadable = 1

// migrations[i] upgrades an index from schema version i to i+1. Each runs
// in the same write transaction as the version bump, so an interrupted
// migration leaves the old version intact.
var migrations = []func(tx *bolt.Tx) error{
	// 0 -> 1: the initial layout.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketNames, bucketRemotes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 1 -> 2: records gain optional fields; the rows stay as they are.
	func(tx *bolt.Tx) error { return nil },
}

var (
	bucketMeta    = []byte("meta")
	bucketImages  = []byte("images")  // image key -> ImageInfo JSON
	bucketNames   = []byte("names")   // name + "\x00" + key -> ""
	bucketRemotes = []byte("remotes") // URL -> Remote JSON
	keySchema     = []byte("schema")
)

// dbTimeout bounds how long a command waits for another process's write
// transaction. Transactions are short (no I/O but the index itself runs
// inside one), so hitting it means a stuck process.
const dbTimeout = 60 * time.Second

// openDB opens the index for one operation. bbolt takes a shared flock for
// read-only opens and an exclusive one for writers, so any number of rkt
// processes can use the store at once with no daemon; each keeps the file
// open only for the duration of one short transaction.
func (s *Store) openDB(write bool) (*bolt.DB, error) {
	p := filepath.Join(s.dir, "db", "index.db")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		if !write {
			return nil, errNoDB
		}
		if err := createDB(p); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(p, 0o640, &bolt.Options{Timeout: dbTimeout, ReadOnly: !write})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("image index %s is locked by another rkt process for more than %s: %w", p, dbTimeout, err)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("opening image index %s: %w: reading the image store needs root or membership in the rkt group", p, err)
		}
		return nil, fmt.Errorf("opening image index %s: %w", p, err)
	}
	return db, nil
}

var errNoDB = errors.New("no index yet")

// createDB makes a new, initialised index under a temporary name and links
// it into place, so that no reader ever opens a file bbolt has not
// initialised (a read-only open of an empty file fails). If another process
// won the race, its index is kept.
func createDB(p string) error {
	var b [8]byte
	rand.Read(b[:])
	tmp := fmt.Sprintf("%s.new-%x", p, b)
	defer os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o640, &bolt.Options{Timeout: dbTimeout})
	if err != nil {
		return fmt.Errorf("creating image index %s: %w", p, err)
	}
	err = db.Update(migrate)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("creating image index %s: %w", p, err)
	}
	if err := os.Link(tmp, p); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating image index %s: %w", p, err)
	}
	return nil
}

// view runs fn in a read transaction. An empty store (no index file yet)
// runs fn with a nil transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	db, err := s.openDB(false)
	if err == errNoDB {
		return fn(nil)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if err := checkSchema(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// update runs fn in a write transaction, migrating the schema first if
// needed. durable=false skips the fsync (for bookkeeping such as last-used
// times, where losing the write on power loss is harmless).
func (s *Store) update(durable bool, fn func(tx *bolt.Tx) error) error {
	db, err := s.openDB(true)
	if err != nil {
		return err
	}
	defer db.Close()
	db.NoSync = !durable
	return db.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

func schemaOf(tx *bolt.Tx) int {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	var v int
	fmt.Sscan(string(b.Get(keySchema)), &v)
	return v
}

func checkSchema(tx *bolt.Tx) error {
	v := schemaOf(tx)
	if v > SchemaVersion {
		return fmt.Errorf("the image store was written by a newer rkt (index schema %d, this rkt knows up to %d): use that rkt, or a new --dir", v, SchemaVersion)
	}
	if v < minReadable {
		// Written by an older rkt: readable only after migration, which a
		// writer does. Say so rather than misreading it.
		return fmt.Errorf("the image store index has schema %d and needs migrating to %d: run any writing command (e.g. rkt image gc) as its owner", v, SchemaVersion)
	}
	return nil
}

func migrate(tx *bolt.Tx) error {
	v := schemaOf(tx)
	if v > SchemaVersion {
		return checkSchema(tx)
	}
	if v == SchemaVersion {
		return nil
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	for ; v < SchemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("migrating image index from schema %d to %d: %w", v, v+1, err)
		}
	}
	return meta.Put(keySchema, []byte(fmt.Sprint(SchemaVersion)))
}

func getImage(tx *bolt.Tx, key string) (*ImageInfo, error) {
	if tx == nil {
		return nil, nil
	}
	data := tx.Bucket(bucketImages).Get([]byte(key))
	if data == nil {
		return nil, nil
	}
	var info ImageInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("image index entry %s is corrupt: %w", key, err)
	}
	return &info, nil
}

func putImage(tx *bolt.Tx, info *ImageInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketImages).Put([]byte(info.Key), data); err != nil {
		return err
	}
	for _, n := range info.names() {
		if err := tx.Bucket(bucketNames).Put(nameKey(n, info.Key), nil); err != nil {
			return err
		}
	}
	return nil
}

func deleteImage(tx *bolt.Tx, info *ImageInfo) error {
	if err := tx.Bucket(bucketImages).Delete([]byte(info.Key)); err != nil {
		return err
	}
	for _, n := range info.names() {
		if err := tx.Bucket(bucketNames).Delete(nameKey(n, info.Key)); err != nil {
			return err
		}
	}
	return nil
}

// names are what the names bucket indexes a record by.
func (i *ImageInfo) names() []string {
	out := make([]string, 0, 1+len(i.Refs))
	if i.Name != "" {
		out = append(out, i.Name)
	}
	return append(out, i.Refs...)
}

func nameKey(name, key string) []byte { return []byte(name + "\x00" + key) }

// imagesNamed returns the keys of the images with this name.
func imagesNamed(tx *bolt.Tx, name string) []string {
	if tx == nil {
		return nil
	}
	var keys []string
	prefix := []byte(name + "\x00")
	c := tx.Bucket(bucketNames).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, string(k[len(prefix):]))
	}
	return keys
}

func forEachImage(tx *bolt.Tx, fn func(*ImageInfo) error) error {
	if tx == nil {
		return nil
	}
	return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var info ImageInfo
		if err := json.Unmarshal(v, &info); err != nil {
			return fmt.Errorf("image index entry %s is corrupt: %w", k, err)
		}
		return fn(&info)
	})
}
