package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Keys of the state bucket.
var (
	keyDesired  = []byte("desired")
	keyReported = []byte("reported")
)

// DesiredState returns the desired-state document last applied and the
// report made for it, as saved by PutDesiredState; both nil when none was
// ever applied.
func (s *Store) DesiredState() (desired, reported []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		// bbolt's memory is only valid until the transaction ends.
		desired = bytes.Clone(b.Get(keyDesired))
		reported = bytes.Clone(b.Get(keyReported))
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read desired state: %w", err)
	}
	return desired, reported, nil
}

// PutDesiredState saves an applied desired-state document and its report
// in one transaction.
func (s *Store) PutDesiredState(desired, reported []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		if err := b.Put(keyDesired, desired); err != nil {
			return err
		}
		return b.Put(keyReported, reported)
	})
	if err != nil {
		return fmt.Errorf("save desired state: %w", err)
	}
	return nil
}
