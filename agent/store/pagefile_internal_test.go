package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// record is one key/value with its bucket path, as the walker reports it.
type record struct{ path, key, value string }

func boltRecords(t testing.TB, db *bolt.DB) []record {
	t.Helper()
	var out []record
	var walk func(path []string, b *bolt.Bucket) error
	walk = func(path []string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(append(path[:len(path):len(path)], string(k)), b.Bucket(k))
			}
			out = append(out, record{strings.Join(path, "/"), string(k), string(v)})
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk([]string{string(name)}, b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func walkRecords(t testing.TB, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := checkFile(f, fi.Size(), nil, nil)
	if err != nil {
		t.Fatalf("check of a healthy file: %v", err)
	}
	w := newWalker(pf, true)
	var out []record
	w.visit = func(path []string, k, v []byte) {
		out = append(out, record{strings.Join(path, "/"), string(k), string(v)})
	}
	if err := w.root(); err != nil {
		t.Fatal(err)
	}
	return out
}

// makeBusyFile writes a file with what bbolt's format has to offer: inline
// and paged buckets, a nested bucket, values with overflow pages, and a
// freelist left by many deletes and rewrites.
func makeBusyFile(t testing.TB, path string, seed uint64) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 30 {
		err := db.Update(func(tx *bolt.Tx) error {
			small, _ := tx.CreateBucketIfNotExists([]byte("small"))
			big, _ := tx.CreateBucketIfNotExists([]byte("big"))
			nested, _ := big.CreateBucketIfNotExists([]byte("nested"))
			if err := small.Put([]byte("k"), fmt.Appendf(nil, "round %d", round)); err != nil {
				return err
			}
			for range 200 {
				k := fmt.Appendf(nil, "key-%05d", rng.IntN(3000))
				if rng.IntN(4) == 0 {
					if err := big.Delete(k); err != nil {
						return err
					}
					continue
				}
				v := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(300))
				if rng.IntN(100) == 0 {
					v = bytes.Repeat([]byte("overflow"), 2000) // 16 KB: overflow pages
				}
				if err := big.Put(k, v); err != nil {
					return err
				}
				if err := nested.Put(k[:6], v[:min(len(v), 10)]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// TestPageFileReadsWhatBoltWrote: on healthy files the check passes, as
// bbolt's own Tx.Check does, and the walker reads exactly the records
// bbolt reads. It fails when a bbolt upgrade changes the file format.
func TestPageFileReadsWhatBoltWrote(t *testing.T) {
	for seed := range uint64(5) {
		path := filepath.Join(t.TempDir(), "busy.db")
		db := makeBusyFile(t, path, seed)
		want := boltRecords(t, db)
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Fatalf("bbolt's own check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		got := walkRecords(t, path)
		if len(got) != len(want) || len(want) < 1000 {
			t.Fatalf("seed %d: walker read %d records, bbolt %d", seed, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("seed %d: record %d: walker %q/%q, bbolt %q/%q", seed, i, got[i].path, got[i].key, want[i].path, want[i].key)
			}
		}
	}
}

// fillOutbox puts n health-sized records into the outbox in batches.
func fillOutbox(tb testing.TB, s *Store, n int) {
	tb.Helper()
	payload := bytes.Repeat([]byte("h"), 1200)
	for first := 1; first <= n; first += 5000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			ob := tx.Bucket(bucketOutbox)
			for seq := first; seq < first+5000 && seq <= n; seq++ {
				if err := ob.Put(u64(uint64(seq)), encodeRecord("health", payload)); err != nil {
					return err
				}
			}
			return putUint(tx.Bucket(bucketMeta), keyOutboxSeq, uint64(min(first+4999, n)))
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCheck measures the check at open on a file holding a full
// default outbox (64 MiB of health documents), page cache warm:
// the full walk, the shallow one, and bbolt's own Tx.Check for scale.
func BenchmarkCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), FileName)
	s, err := Open(path, Options{OutboxMaxMessages: 1 << 30, OutboxMaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	fillOutbox(b, s, 64<<20/1210)
	s.Close()
	fi, _ := os.Stat(path)
	b.Logf("file %d MiB", fi.Size()>>20)
	if pf, err := checkFile(f0(b, path), fi.Size(), nil, nil); err == nil {
		b.Logf("in use %d MiB", pf.meta.hwm*uint64(pf.psz)>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := checkFile(f, fi.Size(), nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shallow", func(b *testing.B) {
		for b.Loop() {
			if _, err := checkFile(f, fi.Size(), bigBucket, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bbolt-tx-check", func(b *testing.B) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for b.Loop() {
			_ = db.View(func(tx *bolt.Tx) error {
				for err := range tx.Check() {
					b.Fatal(err)
				}
				return nil
			})
		}
	})
}

func f0(tb testing.TB, path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}
