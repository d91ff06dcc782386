package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside the data directory.
const FileName = "camgate.db"

// Bucket names.
var (
	bucketMeta     = []byte("meta")
	bucketPaths    = []byte("paths")
	bucketOutbox   = []byte("outbox")
	bucketCommands = []byte("commands")
	bucketStats    = []byte("stats")
	bucketState    = []byte("state")
)

// Keys of the meta bucket.
var (
	keySchema        = []byte("schema")
	keyAgentID       = []byte("agent_id")
	keyBootCount     = []byte("boot_count")
	keyOutboxSeq     = []byte("outbox_seq")
	keyOutboxDropped = []byte("outbox_dropped")
	keyOutboxFailed  = []byte("outbox_failed") // appends that failed, lifetime
	keyRunning       = []byte("running")       // 1 while open, 0 after a clean Close
	keyRecovery      = []byte("recovery")      // a Recovery for the next Open to report
)

// Options configure Open. Zero values take the defaults in the comments.
type Options struct {
	// Timeout is how long Open waits for bbolt's file lock; default 1s.
	Timeout time.Duration
	// OutboxMaxMessages bounds the outbox by count; default 100000.
	OutboxMaxMessages int
	// OutboxMaxBytes bounds the outbox by the size of its records; default 64 MiB.
	OutboxMaxBytes int64
	// Now is the clock (corrupt-file names, journal times); default time.Now.
	Now func() time.Time
	// FullCheck reads every page at every Open. By default Open reads
	// every page only when the last run did not stop cleanly (a crash, a
	// power cut, SIGKILL), and otherwise all but the outbox's leaf pages,
	// which bbolt reads anyway when Open counts the outbox (under the
	// same protection, see Damaged). On a file holding a full 64 MiB
	// outbox (115 MiB on disk) the full check takes about 0.2 s, the
	// other well under 2 ms (BenchmarkCheck). Default false.
	FullCheck bool
}

func (o *Options) fill() {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.OutboxMaxMessages <= 0 {
		o.OutboxMaxMessages = 100000
	}
	if o.OutboxMaxBytes <= 0 {
		o.OutboxMaxBytes = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the open state file. Its methods are safe for concurrent use.
type Store struct {
	db        *bolt.DB
	opts      Options
	bootCount uint64
	recovery  *Recovery
	closeOnce sync.Once
	closeErr  error
	// damaged is closed when a transaction ran into a damaged page.
	damaged     chan struct{}
	damagedOnce sync.Once

	// mu serialises outbox writes with the in-memory figures below: depth,
	// bytes and drops change after a successful commit; seq and failures
	// as soon as an append fails.
	mu          sync.Mutex
	obDepth     int
	obBytes     int64
	obSeq       uint64 // last seq handed out, failed appends included
	obDropped   uint64 // dropped by the bounds since the file was created
	obFailed    uint64 // failed appends since the file was created
	obLimitMsgs int
	obLimitB    int64
	signal      chan struct{}
}

// Open opens or creates the store at path (normally dataDir/camgate.db):
// it creates the directory (0700), takes the file lock within opts.Timeout
// (ErrLocked when another camgate holds it; that file is left alone),
// checks the file, migrates the schema and increments the boot count.
//
// A damaged file (short, torn, overwritten, not a bbolt file at all, a
// directory in its place) is moved aside to camgate.db.corrupt-<time>
// and a fresh file takes its place, holding what could be read of the old
// one: fleet paths, the agent id, the counters, queued messages, the
// command journal and the stats. Recovered says what happened. A file that
// cannot be opened for other reasons (permissions, a read-only file
// system) is left in place and the error returned.
func Open(path string, opts Options) (*Store, error) {
	opts.fill()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	rec, seqSkip, err := prepare(path, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	newStore := func() *Store {
		return &Store{opts: opts, signal: make(chan struct{}, 1), damaged: make(chan struct{})}
	}
	s := newStore()
	err = s.openBolt(path, seqSkip)
	if err != nil && (errors.Is(err, ErrDamaged) || isCorrupt(err)) {
		// The check missed what bbolt tripped over: recover as from any
		// damage, then open the fresh file.
		if rec, _, err = prepare(path, opts, err); err == nil {
			s = newStore()
			err = s.openBolt(path, 0)
		}
	}
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			err = fmt.Errorf("%w (timeout %s)", ErrLocked, opts.Timeout)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if s.recovery == nil {
		s.recovery = rec
	}
	s.obLimitMsgs, s.obLimitB = opts.OutboxMaxMessages, opts.OutboxMaxBytes
	return s, nil
}

// isCorrupt tells bbolt's errors for a file that is not (or no longer) a
// bbolt database from errors where moving the file aside would be wrong
// (permissions, lock).
func isCorrupt(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) ||
		errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) ||
		strings.Contains(err.Error(), "file size too small")
}

// init migrates, takes a Recovery left by a rebuild, steps seq by seqSkip,
// bumps the boot count, marks the file as in use and loads the outbox
// figures.
func (s *Store) init(seqSkip uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := migrate(tx, migrations); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyRecovery); v != nil {
			var r Recovery
			if err := json.Unmarshal(v, &r); err == nil {
				s.recovery = &r
			}
			if err := meta.Delete(keyRecovery); err != nil {
				return fmt.Errorf("recovery report: %w", err)
			}
		}
		s.bootCount = getUint(meta, keyBootCount) + 1
		if err := putUint(meta, keyBootCount, s.bootCount); err != nil {
			return fmt.Errorf("boot count: %w", err)
		}
		if err := putUint(meta, keyRunning, 1); err != nil {
			return fmt.Errorf("running flag: %w", err)
		}
		s.obSeq = getUint(meta, keyOutboxSeq) + seqSkip
		if seqSkip > 0 {
			if err := putUint(meta, keyOutboxSeq, s.obSeq); err != nil {
				return fmt.Errorf("seq: %w", err)
			}
		}
		s.obDropped = getUint(meta, keyOutboxDropped)
		s.obFailed = getUint(meta, keyOutboxFailed)
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			s.obDepth++
			s.obBytes += int64(len(v))
		}
		return nil
	})
}

// Close marks the stop as clean (the next Open then skips the full check),
// saves the seq counter and failure count when appends failed since the
// last successful one, and closes the file. It is safe to call more than
// once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		// Best effort: on a full disk this fails and the next Open runs
		// the full check; seqs of failed appends were never published, so
		// handing them out again repeats none for the fleet. A file found
		// damaged stays marked as running, for the full check.
		_ = s.update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if err := s.saveCounters(meta); err != nil {
				return err
			}
			select {
			case <-s.damaged:
				return nil
			default:
				return putUint(meta, keyRunning, 0)
			}
		})
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close store: %w", err)
		}
	})
	return s.closeErr
}

// Damaged is closed when a transaction ran into a damaged page after Open
// (a page the cheap check does not read, see Options.FullCheck). The file
// is then left marked as not stopped cleanly: the agent restarts, and the
// next Open checks every page and recovers the file.
func (s *Store) Damaged() <-chan struct{} { return s.damaged }

// view and update run bbolt transactions through protect.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return s.protect(func() error { return s.db.View(fn) })
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.protect(func() error { return s.db.Update(fn) })
}

// protect turns bbolt's panic on a damaged page, or a fault on its memory
// map, into an error wrapping ErrDamaged and closes Damaged. bbolt rolls
// the transaction back on the way out. SetPanicOnFault covers the calling
// goroutine only, which is the one bbolt reads on.
func (s *Store) protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt panicked: %v", ErrDamaged, r)
			s.damagedOnce.Do(func() { close(s.damaged) })
		}
	}()
	return fn()
}

// Path is the file name of the open store.
func (s *Store) Path() string { return s.db.Path() }

// BootCount is the number of times the store has been opened, this time
// included.
func (s *Store) BootCount() uint64 { return s.bootCount }

// Recovered is nil, or what Open did about a damaged file.
func (s *Store) Recovered() *Recovery { return s.recovery }

// AgentID returns the persisted agent id; when there is none it calls gen
// once and persists its result.
func (s *Store) AgentID(gen func() (string, error)) (string, error) {
	var id string
	err := s.view(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyAgentID))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read agent id: %w", err)
	}
	if id != "" {
		return id, nil
	}
	id, err = gen()
	if err != nil {
		return "", fmt.Errorf("generate agent id: %w", err)
	}
	if id == "" {
		return "", errors.New("generate agent id: empty id")
	}
	err = s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if cur := meta.Get(keyAgentID); len(cur) > 0 {
			id = string(cur) // another caller won the race; keep theirs
			return nil
		}
		return meta.Put(keyAgentID, []byte(id))
	})
	if err != nil {
		return "", fmt.Errorf("save agent id: %w", err)
	}
	return id, nil
}

// SchemaVersion is the schema version of the open file.
func (s *Store) SchemaVersion() (uint64, error) {
	var v uint64
	err := s.view(func(tx *bolt.Tx) error {
		v = getUint(tx.Bucket(bucketMeta), keySchema)
		return nil
	})
	return v, err
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error { return b.Put(key, u64(v)) }
