package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// unknownSeqSkip is how far the seq counter jumps past the highest seq
// found anywhere in a damaged file when the counter itself could not be
// read: the fleet may have seen seqs above the highest one left on disk,
// and a gap it can explain (the store.recovered event carries the jump)
// is better than a repeat it would discard as a duplicate.
const unknownSeqSkip = 1 << 20

// Recovery says what Open did about a damaged file; the agent raises it
// as a store.recovered event.
type Recovery struct {
	// MovedTo is where the damaged file went; "" when bbolt could open the
	// file from its older meta page and nothing had to move.
	MovedTo string `json:"movedTo,omitempty"`
	// Damage is what the check found.
	Damage string `json:"damage"`
	// AgentID tells whether the agent id was recovered.
	AgentID bool `json:"agentId"`
	// Buckets says per bucket what was copied into the fresh file.
	Buckets map[string]BucketRecovery `json:"buckets,omitempty"`
	// BootCount and Seq are where the fresh file's counters continue from.
	BootCount uint64 `json:"bootCount"`
	Seq       uint64 `json:"seq"`
	// SeqSkipped is how far seq was moved past the highest seq found,
	// because the file may have handed out more than what is left of it.
	SeqSkipped uint64 `json:"seqSkipped,omitempty"`
}

// BucketRecovery counts one bucket's records: copied into the fresh file,
// read but invalid (left out), and pages that could not be read at all
// (their records are lost; how many is not known).
type BucketRecovery struct {
	Recovered int `json:"recovered"`
	Rejected  int `json:"rejected,omitempty"`
	LostPages int `json:"lostPages,omitempty"`
}

// salvager reads what it can from a damaged file and copies it into a
// fresh store file.
type salvager struct {
	dst   *bolt.DB
	batch []kv
	bytes int
	err   error // first write error: the copy is then abandoned

	rec       Recovery
	agentID   string
	bootCount uint64
	seq       uint64 // highest seq seen
	seqExact  bool   // the seq counter was read from the current tree
	seqSlack  uint64 // 1 when the current tree may be a transaction old
	dropped   uint64
	failed    uint64
	ids       map[string]int // agent ids found by the page scan
}

type kv struct {
	bucket []byte
	k, v   []byte
}

// Batches of the copy: small enough to bound memory on a small box.
const (
	salvageBatchRecords = 1000
	salvageBatchBytes   = 4 << 20
)

func (s *salvager) count(bucket string, f func(*BucketRecovery)) {
	if s.rec.Buckets == nil {
		s.rec.Buckets = map[string]BucketRecovery{}
	}
	b := s.rec.Buckets[bucket]
	f(&b)
	s.rec.Buckets[bucket] = b
}

// visit takes one record of the damaged file's current tree.
func (s *salvager) visit(path []string, k, v []byte) {
	if len(path) != 1 {
		return // camgate nests no buckets
	}
	name := path[0]
	if name == string(bucketMeta) {
		s.meta(k, v, true)
		return
	}
	if !validRecord(name, k, v) {
		s.count(name, func(b *BucketRecovery) { b.Rejected++ })
		return
	}
	if name == string(bucketOutbox) {
		s.seq = max(s.seq, binary.BigEndian.Uint64(k))
	}
	s.put([]byte(name), k, v)
	s.count(name, func(b *BucketRecovery) { b.Recovered++ })
}

// meta takes a key of a meta bucket: from the current tree (exact) or
// from any page of the file (scan), where old copies are found too and
// only the highest counter is believable.
func (s *salvager) meta(k, v []byte, exact bool) {
	switch string(k) {
	case string(keyAgentID):
		if validAgentID(v) {
			if exact {
				s.agentID = string(v)
			} else {
				s.ids[string(v)]++
			}
		}
	case string(keyBootCount):
		if len(v) == 8 {
			s.bootCount = max(s.bootCount, binary.BigEndian.Uint64(v))
		}
	case string(keyOutboxSeq):
		if len(v) == 8 {
			s.seq = max(s.seq, binary.BigEndian.Uint64(v))
			s.seqExact = s.seqExact || exact
		}
	case string(keyOutboxDropped):
		if len(v) == 8 && exact {
			s.dropped = binary.BigEndian.Uint64(v)
		}
	case string(keyOutboxFailed):
		if len(v) == 8 && exact {
			s.failed = binary.BigEndian.Uint64(v)
		}
	}
}

func validAgentID(v []byte) bool {
	if len(v) == 0 || len(v) > 256 || !utf8.Valid(v) {
		return false
	}
	return !bytes.ContainsFunc(v, unicode.IsControl)
}

// validRecord decodes a record as its bucket's reader would.
func validRecord(bucket string, k, v []byte) bool {
	switch bucket {
	case string(bucketPaths):
		var sp storedPath
		return len(k) > 0 && json.Unmarshal(v, &sp) == nil
	case string(bucketOutbox):
		if len(k) != 8 {
			return false
		}
		_, payload, err := decodeRecord(v)
		return err == nil && json.Valid(payload)
	case string(bucketCommands):
		var e JournalEntry
		return len(k) > 0 && json.Unmarshal(v, &e) == nil
	case string(bucketStats):
		var p PathStats
		return len(k) > 0 && json.Unmarshal(v, &p) == nil
	case string(bucketState):
		return (bytes.Equal(k, keyDesired) || bytes.Equal(k, keyReported)) && json.Valid(v)
	}
	return false
}

func (s *salvager) put(bucket, k, v []byte) {
	if s.err != nil {
		return
	}
	s.batch = append(s.batch, kv{bucket, k, v})
	s.bytes += len(k) + len(v)
	if len(s.batch) >= salvageBatchRecords || s.bytes >= salvageBatchBytes {
		s.flush()
	}
}

func (s *salvager) flush() {
	if s.err != nil || len(s.batch) == 0 {
		return
	}
	s.err = s.dst.Update(func(tx *bolt.Tx) error {
		for _, r := range s.batch {
			if err := tx.Bucket(r.bucket).Put(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	})
	s.batch, s.bytes = s.batch[:0], 0
}

// scan reads every page of the file, in use or not, for the counters and
// the agent id: it finds them when the tree above them is lost, and finds
// the highest seq even in pages the current tree no longer uses.
func (s *salvager) scan(r io.ReaderAt, size, psz int64) {
	pf := &pageFile{r: &windowReader{r: r, size: size}, size: size, psz: psz}
	last := uint64(size / psz)
	for id := uint64(2); id < last; id++ {
		p, err := pf.readPageBelow(id, last)
		if err != nil || p.flags != flagLeaf {
			continue
		}
		s.scanLeaf(p, 0)
		id += uint64(p.overflow)
	}
}

func (s *salvager) scanLeaf(p page, depth int) {
	_ = protect(func() error {
		for i := 0; i < p.count; i++ {
			k, v, isBucket, err := p.leaf(i)
			if err != nil {
				return err
			}
			if isBucket {
				if len(v) >= bucketHeaderSize && ne.Uint64(v) == 0 && depth < 2 {
					if ip, err := inlinePage(v); err == nil {
						s.scanLeaf(ip, depth+1)
					}
				}
				continue
			}
			s.meta(k, v, false)
			if len(k) == 8 {
				// An outbox record counts if its payload carries its seq.
				if _, payload, err := decodeRecord(v); err == nil {
					seq := binary.BigEndian.Uint64(k)
					if bytes.Contains(payload, []byte(`"seq":`+strconv.FormatUint(seq, 10))) {
						s.seq = max(s.seq, seq)
					}
				}
			}
		}
		return nil
	})
}

// rebuild writes a fresh store file at dst from what can be read of the
// damaged file src (nil when there is nothing to read: a directory in its
// place), which is about to move to aside. damage says what is wrong with
// it. The fresh file carries the
// Recovery under the meta key "recovery" for the Open that follows.
func rebuild(dst string, src io.ReaderAt, size int64, aside string, damage error, opts Options) (*Recovery, error) {
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	db, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, migrations) }); err != nil {
		return nil, err
	}
	s := &salvager{dst: db, ids: map[string]int{}, rec: Recovery{MovedTo: aside, Damage: damage.Error()}}
	if src != nil && size > 0 {
		psz := int64(os.Getpagesize())
		if pf, err := openPageFile(src, size, true); err == nil {
			psz = pf.psz
			w := newWalker(pf, false)
			w.visit = s.visit
			_ = protect(func() error { return w.root() })
			for name, n := range w.lost {
				if name == "" {
					name = "root"
				}
				s.count(name, func(b *BucketRecovery) { b.LostPages += n })
			}
			if pf.metaErr != nil {
				s.seqSlack = 1 // the tree read may be a transaction old
			}
		} else {
			s.count("root", func(b *BucketRecovery) { b.LostPages++ })
		}
		s.scan(src, size, psz)
		s.flush()
		if s.err != nil {
			return nil, fmt.Errorf("copy records: %w", s.err)
		}
	}
	if s.agentID == "" {
		best := 0
		for id, n := range s.ids {
			if n > best || (n == best && id < s.agentID) {
				s.agentID, best = id, n
			}
		}
	}
	r := &s.rec
	r.AgentID, r.BootCount, r.Seq = s.agentID != "", s.bootCount, s.seq
	r.SeqSkipped = s.seqSlack
	if !s.seqExact {
		r.SeqSkipped = unknownSeqSkip
	}
	r.Seq += r.SeqSkipped
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if s.agentID != "" {
			if err := meta.Put(keyAgentID, []byte(s.agentID)); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			k []byte
			v uint64
		}{{keyBootCount, r.BootCount}, {keyOutboxSeq, r.Seq}, {keyOutboxDropped, s.dropped}, {keyOutboxFailed, s.failed}} {
			if err := putUint(meta, c.k, c.v); err != nil {
				return err
			}
		}
		j, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return meta.Put(keyRecovery, j)
	})
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return r, nil
}

// asideName is the name a damaged file is moved to: path.corrupt-<UTC
// time>, with a counter when that name is taken.
func asideName(path string, now time.Time) string {
	base := fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405Z"))
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); os.IsNotExist(err) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}
