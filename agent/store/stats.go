package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PathStats are lifetime counters of one path, kept across restarts.
type PathStats struct {
	BytesIn        uint64 `json:"bytesIn"`
	BytesOut       uint64 `json:"bytesOut"`
	Readers        uint64 `json:"readers"` // reader sessions ever opened
	Reconnects     uint64 `json:"reconnects"`
	PacketsDropped uint64 `json:"packetsDropped"`
}

func (p *PathStats) add(d PathStats) {
	p.BytesIn += d.BytesIn
	p.BytesOut += d.BytesOut
	p.Readers += d.Readers
	p.Reconnects += d.Reconnects
	p.PacketsDropped += d.PacketsDropped
}

// AddPathStats adds the deltas in d (one entry per path) in one transaction.
func (s *Store) AddPathStats(d map[string]PathStats) error {
	if len(d) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStats)
		for name, delta := range d {
			var cur PathStats
			if v := b.Get([]byte(name)); v != nil {
				if err := json.Unmarshal(v, &cur); err != nil {
					return fmt.Errorf("path %q: %w", name, err)
				}
			}
			cur.add(delta)
			v, err := json.Marshal(cur)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(name), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add path stats: %w", err)
	}
	return nil
}

// AllPathStats returns the lifetime counters of every path seen.
func (s *Store) AllPathStats() (map[string]PathStats, error) {
	out := map[string]PathStats{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStats).ForEach(func(k, v []byte) error {
			var p PathStats
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("path %q: %w", k, err)
			}
			out[string(k)] = p
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read path stats: %w", err)
	}
	return out, nil
}
