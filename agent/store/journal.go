package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CommandState is the journal state of a command id.
type CommandState uint8

// Command states.
const (
	CommandUnknown CommandState = iota
	// CommandPending: recorded before execution, no reply stored yet. Seen
	// on a later delivery it means the agent stopped while running it.
	CommandPending
	// CommandDone: the reply is stored.
	CommandDone
)

func (c CommandState) String() string {
	switch c {
	case CommandPending:
		return "pending"
	case CommandDone:
		return "done"
	}
	return "unknown"
}

// JournalEntry is one journaled command.
type JournalEntry struct {
	ID    string          `json:"-"`
	Cmd   string          `json:"cmd"`
	State CommandState    `json:"state"`
	At    time.Time       `json:"at"`
	Reply json.RawMessage `json:"reply,omitempty"`
}

// BeginCommand records id as pending unless it is already journaled, in
// which case it returns the stored entry and found = true and records
// nothing: the caller must not execute the command again.
func (s *Store) BeginCommand(id, cmd string) (e JournalEntry, found bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		if v := b.Get([]byte(id)); v != nil {
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode entry: %w", err)
			}
			e.ID, found = id, true
			return nil
		}
		e = JournalEntry{ID: id, Cmd: cmd, State: CommandPending, At: s.opts.Now().UTC()}
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		return JournalEntry{}, false, fmt.Errorf("journal command %q: %w", id, err)
	}
	return e, found, nil
}

// FinishCommand stores the reply of id (recording it if Begin was skipped).
func (s *Store) FinishCommand(id, cmd string, reply []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		e := JournalEntry{Cmd: cmd, At: s.opts.Now().UTC()}
		if v := b.Get([]byte(id)); v != nil {
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode entry: %w", err)
			}
		}
		e.State, e.Reply = CommandDone, json.RawMessage(reply)
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("journal reply %q: %w", id, err)
	}
	return nil
}

// Command returns the journal entry of id or ErrNotFound.
func (s *Store) Command(id string) (JournalEntry, error) {
	var e JournalEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCommands).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		e.ID = id
		return json.Unmarshal(v, &e)
	})
	if err != nil {
		return JournalEntry{}, fmt.Errorf("read command %q: %w", id, err)
	}
	return e, nil
}

// PruneCommands deletes entries older than maxAge, then the oldest beyond
// maxCount (either <= 0 disables that bound). It returns how many went.
func (s *Store) PruneCommands(maxAge time.Duration, maxCount int) (int, error) {
	now := s.opts.Now()
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		type aged struct {
			id string
			at time.Time
		}
		var keep []aged
		var drop [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var e JournalEntry
			if err := json.Unmarshal(v, &e); err != nil || (maxAge > 0 && now.Sub(e.At) > maxAge) {
				drop = append(drop, append([]byte(nil), k...))
				return nil
			}
			keep = append(keep, aged{string(k), e.At})
			return nil
		})
		if err != nil {
			return err
		}
		if maxCount > 0 && len(keep) > maxCount {
			sort.Slice(keep, func(i, j int) bool { return keep[i].at.Before(keep[j].at) })
			for _, a := range keep[:len(keep)-maxCount] {
				drop = append(drop, []byte(a.id))
			}
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		removed = len(drop)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune commands: %w", err)
	}
	return removed, nil
}
