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
	// Failed counts appends that failed (disk full, I/O error, a record
	// too large) since the file was created; each took a seq.
	Failed  uint64
	LastSeq uint64 // last seq handed out, failed appends included
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

// AppendOutbox stores a message under the next seq. build gets that seq so
// the payload can carry it. When the bounds are exceeded the oldest
// messages are deleted in the same transaction; dropped says how many, and
// the persistent drop counter grows by as much.
//
// An append that fails after build got its seq (build's error, a record
// too large, a write that fails on a full disk) still takes the seq: the
// fleet sees the gap, OutboxStats counts the failure, and the counters
// reach the file with the next commit that succeeds (or Close). seq is
// returned with the error.
func (s *Store) AppendOutbox(kind string, build func(seq uint64) ([]byte, error)) (seq uint64, dropped int, err error) {
	return s.appendOutbox(kind, build, true)
}

// AppendOutboxIfRoom appends like AppendOutbox when the bounds leave room
// without dropping anything; otherwise it returns ErrOutboxFull and no
// seq is taken. Notices about the outbox itself use it: they must never
// push out the telemetry they report on.
func (s *Store) AppendOutboxIfRoom(kind string, build func(seq uint64) ([]byte, error)) (seq uint64, err error) {
	seq, _, err = s.appendOutbox(kind, build, false)
	return seq, err
}

func (s *Store) appendOutbox(kind string, build func(seq uint64) ([]byte, error), evict bool) (seq uint64, dropped int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq = s.obSeq + 1
	var rec []byte
	payload, err := build(seq)
	if err == nil {
		rec = encodeRecord(kind, payload)
		if int64(len(rec)) > s.obLimitB {
			err = fmt.Errorf("%d bytes: %w", len(rec), ErrTooLarge)
		}
	}
	if err == nil && !evict && (s.obDepth+1 > s.obLimitMsgs || s.obBytes+int64(len(rec)) > s.obLimitB) {
		return 0, 0, ErrOutboxFull
	}
	s.obSeq = seq // taken, whatever happens now
	if err != nil {
		s.obFailed++
		return seq, 0, fmt.Errorf("append outbox seq %d: %w", seq, err)
	}
	depth, size := s.obDepth+1, s.obBytes+int64(len(rec))
	err = s.update(func(tx *bolt.Tx) error {
		meta, ob := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		if err := s.saveCounters(meta); err != nil {
			return err
		}
		if err := ob.Put(u64(seq), rec); err != nil {
			return err
		}
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
			return putUint(meta, keyOutboxDropped, s.obDropped+uint64(dropped))
		}
		return nil
	})
	if err != nil {
		s.obFailed++
		return seq, 0, fmt.Errorf("append outbox seq %d: %w", seq, err)
	}
	s.obDepth, s.obBytes = depth, size
	s.obDropped += uint64(dropped)
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return seq, dropped, nil
}

// saveCounters writes the seq counter and the failure count (both may be
// ahead of the file after failed appends). The caller holds s.mu.
func (s *Store) saveCounters(meta *bolt.Bucket) error {
	if err := putUint(meta, keyOutboxSeq, s.obSeq); err != nil {
		return err
	}
	return putUint(meta, keyOutboxFailed, s.obFailed)
}

// OutboxAfter returns up to max messages with a seq above after, in seq
// order. A record that cannot be decoded (damaged in place) is skipped:
// it stays until the bounds push it out, and is counted as dropped then.
func (s *Store) OutboxAfter(after uint64, max int) ([]OutboxMsg, error) {
	var out []OutboxMsg
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			kind, payload, err := decodeRecord(v)
			if err != nil || len(k) != 8 {
				continue
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
	err := s.update(func(tx *bolt.Tx) error {
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
	defer s.mu.Unlock()
	return OutboxStats{Depth: s.obDepth, Bytes: s.obBytes, Dropped: s.obDropped, Failed: s.obFailed, LastSeq: s.obSeq}, nil
}
