package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A migration moves a file from version to version+1 inside one update
// transaction, so a crash leaves the file at the old or the new version.
type migration struct {
	name string
	up   func(tx *bolt.Tx) error
}

// migrations[i] moves the schema from version i to i+1. Append only; never
// edit a step that has shipped.
var migrations = []migration{
	{"create meta, paths, outbox and commands", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketPaths, bucketOutbox, bucketCommands} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
	{"add per-path lifetime stats and the outbox drop counter", func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketStats); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyOutboxDropped) == nil {
			return putUint(meta, keyOutboxDropped, 0)
		}
		return nil
	}},
	{"add the desired-state bucket", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketState)
		return err
	}},
}

// CurrentSchema is the schema version this build writes.
func CurrentSchema() uint64 { return uint64(len(migrations)) }

// migrate runs the steps after the file's version.
func migrate(tx *bolt.Tx, steps []migration) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("create meta bucket: %w", err)
	}
	v := getUint(meta, keySchema)
	if v > uint64(len(steps)) {
		return fmt.Errorf("schema version %d, this build knows %d: %w", v, len(steps), ErrNewerSchema)
	}
	for ; v < uint64(len(steps)); v++ {
		if err := steps[v].up(tx); err != nil {
			return fmt.Errorf("migrate schema %d -> %d (%s): %w", v, v+1, steps[v].name, err)
		}
		if err := putUint(meta, keySchema, v+1); err != nil {
			return fmt.Errorf("migrate schema %d -> %d: %w", v, v+1, err)
		}
	}
	return nil
}
