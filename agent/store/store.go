package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	recovered string

	// mu serialises outbox writes with the in-memory depth figures below,
	// which are only changed after a successful commit.
	mu          sync.Mutex
	obDepth     int
	obBytes     int64
	obLimitMsgs int
	obLimitB    int64
	signal      chan struct{}
}

// Open opens or creates the store at path (normally dataDir/camgate.db):
// it creates the directory (0700), takes the file lock within opts.Timeout,
// moves a file that is not a bbolt database aside, migrates the schema and
// increments the boot count.
func Open(path string, opts Options) (*Store, error) {
	opts.fill()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{opts: opts, signal: make(chan struct{}, 1)}
	db, err := openBolt(path, opts.Timeout)
	if err != nil && isCorrupt(err) {
		aside := fmt.Sprintf("%s.corrupt-%s", path, opts.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("open store %s: %w (moving it aside: %v)", path, err, rerr)
		}
		s.recovered = aside
		db, err = openBolt(path, opts.Timeout)
	}
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w (timeout %s)", path, ErrLocked, opts.Timeout)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.db = db
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.obLimitMsgs, s.obLimitB = opts.OutboxMaxMessages, opts.OutboxMaxBytes
	return s, nil
}

func openBolt(path string, timeout time.Duration) (*bolt.DB, error) {
	// NoSync stays false: a commit is on disk when Update returns.
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
}

// isCorrupt tells a file that is not (or no longer) a bbolt database from
// errors where moving the file aside would be wrong (permissions, lock).
func isCorrupt(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) ||
		errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) ||
		strings.Contains(err.Error(), "file size too small")
}

// init migrates, bumps the boot count and loads the outbox figures.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, migrations); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		s.bootCount = getUint(meta, keyBootCount) + 1
		if err := putUint(meta, keyBootCount, s.bootCount); err != nil {
			return fmt.Errorf("boot count: %w", err)
		}
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			s.obDepth++
			s.obBytes += int64(len(v))
		}
		return nil
	})
}

// Close closes the file. It is safe to call more than once.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path is the file name of the open store.
func (s *Store) Path() string { return s.db.Path() }

// BootCount is the number of times the store has been opened, this time
// included.
func (s *Store) BootCount() uint64 { return s.bootCount }

// Recovered is "" or the path a corrupt file was moved to during Open.
func (s *Store) Recovered() string { return s.recovered }

// AgentID returns the persisted agent id; when there is none it calls gen
// once and persists its result.
func (s *Store) AgentID(gen func() (string, error)) (string, error) {
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
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
	err = s.db.Update(func(tx *bolt.Tx) error {
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
	err := s.db.View(func(tx *bolt.Tx) error {
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
