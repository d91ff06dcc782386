package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// OutboxMsg is one queued message: Kind is the topic below P/ID/
// ("health", "events"), so queued messages follow a change of prefix or id.
type OutboxMsg struct {
	Seq     uint64
	Kind    string
	Payload []byte
}

// OutboxStats are the outbox figures for health and /metrics.
type OutboxStats struct {
	Depth   int    // messages waiting
	Bytes   int64  // size of their records
	Dropped uint64 // dropped by the bounds since the file was created
	LastSeq uint64 // last seq handed out
}

// record layout: uvarint(len(kind)) kind payload.
func encodeRecord(kind string, payload []byte) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(kind)+len(payload))
	b = binary.AppendUvarint(b, uint64(len(kind)))
	b = append(b, kind...)
	return append(b, payload...)
}

func decodeRecord(v []byte) (kind string, payload []byte, err error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return "", nil, errors.New("malformed outbox record")
	}
	kind = string(v[w : w+int(n)])
	payload = append([]byte(nil), v[w+int(n):]...)
	return kind, payload, nil
}

// SetOutboxLimits changes the bounds (values <= 0 keep the current one).
// They apply from the next append.
func (s *Store) SetOutboxLimits(maxMessages int, maxBytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if maxMessages > 0 {
		s.obLimitMsgs = maxMessages
	}
	if maxBytes > 0 {
		s.obLimitB = maxBytes
	}
}

// AppendOutbox stores a message under the next persisted seq. build gets
// that seq so the payload can carry it. When the bounds are exceeded the
// oldest messages are deleted in the same transaction; dropped says how
// many, and the persistent drop counter grows by as much.
func (s *Store) AppendOutbox(kind string, build func(seq uint64) ([]byte, error)) (seq uint64, dropped int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	depth, size := s.obDepth, s.obBytes
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta, ob := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		seq = getUint(meta, keyOutboxSeq) + 1
		payload, err := build(seq)
		if err != nil {
			return err
		}
		rec := encodeRecord(kind, payload)
		if int64(len(rec)) > s.obLimitB {
			return fmt.Errorf("%d bytes: %w", len(rec), ErrTooLarge)
		}
		if err := putUint(meta, keyOutboxSeq, seq); err != nil {
			return err
		}
		if err := ob.Put(u64(seq), rec); err != nil {
			return err
		}
		depth++
		size += int64(len(rec))
		c := ob.Cursor()
		for depth > s.obLimitMsgs || size > s.obLimitB {
			k, v := c.First()
			if k == nil {
				break
			}
			size -= int64(len(v))
			depth--
			dropped++
			if err := c.Delete(); err != nil {
				return err
			}
		}
		if dropped > 0 {
			return putUint(meta, keyOutboxDropped, getUint(meta, keyOutboxDropped)+uint64(dropped))
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("append outbox: %w", err)
	}
	s.obDepth, s.obBytes = depth, size
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return seq, dropped, nil
}

// OutboxAfter returns up to max messages with a seq above after, in seq order.
func (s *Store) OutboxAfter(after uint64, max int) ([]OutboxMsg, error) {
	var out []OutboxMsg
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			kind, payload, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("seq %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, OutboxMsg{Seq: binary.BigEndian.Uint64(k), Kind: kind, Payload: payload})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// DeleteOutbox removes acknowledged messages in one transaction. Seqs that
// are already gone (dropped by the bounds) are ignored.
func (s *Store) DeleteOutbox(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	depth, size := s.obDepth, s.obBytes
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			k := u64(seq)
			v := ob.Get(k)
			if v == nil {
				continue
			}
			depth--
			size -= int64(len(v))
			if err := ob.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	s.obDepth, s.obBytes = depth, size
	return nil
}

// OutboxSignal receives a value after appends (coalesced: one pending
// value at most). One consumer, the uplink drainer, reads it.
func (s *Store) OutboxSignal() <-chan struct{} { return s.signal }

// OutboxStats returns the current figures.
func (s *Store) OutboxStats() (OutboxStats, error) {
	s.mu.Lock()
	st := OutboxStats{Depth: s.obDepth, Bytes: s.obBytes}
	s.mu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.Dropped = getUint(meta, keyOutboxDropped)
		st.LastSeq = getUint(meta, keyOutboxSeq)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("outbox stats: %w", err)
	}
	return st, nil
}
