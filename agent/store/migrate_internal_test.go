package store

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writeV1 makes a file as the first schema left it: four buckets, version 1,
// an agent id and a queued message.
func writeV1(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, migrations[:1]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keyAgentID, []byte("cg-old")); err != nil {
			return err
		}
		if err := putUint(tx.Bucket(bucketMeta), keyOutboxSeq, 7); err != nil {
			return err
		}
		return tx.Bucket(bucketOutbox).Put(u64(7), encodeRecord("events", []byte(`{"seq":7}`)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrateV1ToV2(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeV1(t, path)
	err := func() error {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			if v := getUint(tx.Bucket(bucketMeta), keySchema); v != 1 {
				t.Fatalf("v1 file has schema %d", v)
			}
			if tx.Bucket(bucketStats) != nil {
				t.Fatal("v1 file already has stats")
			}
			return nil
		})
	}()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != CurrentSchema() || CurrentSchema() < 2 {
		t.Fatalf("schema after open %d (current %d), want the current one", v, CurrentSchema())
	}
	if err := s.AddPathStats(map[string]PathStats{"cam1": {BytesIn: 5}}); err != nil {
		t.Fatalf("stats bucket missing after migration: %v", err)
	}
	if err := s.PutDesiredState([]byte(`{}`), []byte(`{}`)); err != nil {
		t.Fatalf("state bucket missing after migration: %v", err)
	}
	st, err := s.OutboxStats()
	if err != nil || st.Depth != 1 || st.LastSeq != 7 || st.Dropped != 0 {
		t.Fatalf("outbox after migration: %+v, %v", st, err)
	}
	id, err := s.AgentID(func() (string, error) { return "new", nil })
	if err != nil || id != "cg-old" {
		t.Fatalf("agent id after migration %q, %v", id, err)
	}
	msgs, err := s.OutboxAfter(0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Seq != 7 || string(msgs[0].Payload) != `{"seq":7}` {
		t.Fatalf("queued message after migration: %+v, %v", msgs, err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeV1(t, path)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	boom := errors.New("boom")
	steps := append(append([]migration(nil), migrations...), migration{"fails", func(*bolt.Tx) error { return boom }})
	err = db.Update(func(tx *bolt.Tx) error { return migrate(tx, steps) })
	if !errors.Is(err, boom) {
		t.Fatalf("migrate: %v", err)
	}
	db.View(func(tx *bolt.Tx) error {
		if v := getUint(tx.Bucket(bucketMeta), keySchema); v != 1 {
			t.Fatalf("schema %d after failed migration, want 1 (rolled back)", v)
		}
		return nil
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketMeta)
		return putUint(b, keySchema, 99)
	})
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open: %v, want ErrNewerSchema", err)
	}
}
