package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
)

func appendN(t testing.TB, s *store.Store, n int, size int) (dropped int) {
	t.Helper()
	pad := strings.Repeat("x", size)
	for range n {
		_, d, err := s.AppendOutbox("events", func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"seq":%d,"p":%q}`, seq, pad), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
	}
	return dropped
}

func TestOutboxOrderAndDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := storetest.Open(t, path, store.Options{})
	for i := 1; i <= 5; i++ {
		kind := "health"
		if i%2 == 0 {
			kind = "events"
		}
		seq, dropped, err := s.AppendOutbox(kind, func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"seq":%d}`, seq), nil
		})
		if err != nil || seq != uint64(i) || dropped != 0 {
			t.Fatalf("append %d: seq %d dropped %d err %v", i, seq, dropped, err)
		}
	}
	select {
	case <-s.OutboxSignal():
	default:
		t.Fatal("no signal after append")
	}
	msgs, err := s.OutboxAfter(0, 3)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("OutboxAfter: %d msgs, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || string(m.Payload) != fmt.Sprintf(`{"seq":%d}`, i+1) {
			t.Fatalf("msg %d = %+v", i, m)
		}
	}
	if msgs[0].Kind != "health" || msgs[1].Kind != "events" {
		t.Fatalf("kinds %q %q", msgs[0].Kind, msgs[1].Kind)
	}
	if err := s.DeleteOutbox(1, 3, 99); err != nil {
		t.Fatal(err)
	}
	msgs, _ = s.OutboxAfter(0, 10)
	if got := seqs(msgs); got != "2,4,5" {
		t.Fatalf("after delete: %s", got)
	}
	msgs, _ = s.OutboxAfter(4, 10)
	if got := seqs(msgs); got != "5" {
		t.Fatalf("after 4: %s", got)
	}

	// The seq counter and the queue survive a reopen; seq never repeats.
	s.Close()
	s = storetest.Open(t, path, store.Options{})
	st, err := s.OutboxStats()
	if err != nil || st.Depth != 3 || st.LastSeq != 5 {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
	seq, _, _ := s.AppendOutbox("events", func(seq uint64) ([]byte, error) { return []byte("{}"), nil })
	if seq != 6 {
		t.Fatalf("seq after reopen %d, want 6", seq)
	}
}

func seqs(msgs []store.OutboxMsg) string {
	var b []string
	for _, m := range msgs {
		b = append(b, fmt.Sprint(m.Seq))
	}
	return strings.Join(b, ",")
}

func TestOutboxBoundByCountDropsOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := storetest.Open(t, path, store.Options{OutboxMaxMessages: 10})
	if d := appendN(t, s, 25, 10); d != 15 {
		t.Fatalf("dropped %d, want 15", d)
	}
	msgs, _ := s.OutboxAfter(0, 100)
	if got := seqs(msgs); got != "16,17,18,19,20,21,22,23,24,25" {
		t.Fatalf("kept %s", got)
	}
	st, _ := s.OutboxStats()
	if st.Depth != 10 || st.Dropped != 15 {
		t.Fatalf("stats %+v", st)
	}
	// The drop counter is persisted.
	s.Close()
	s = storetest.Open(t, path, store.Options{OutboxMaxMessages: 10})
	appendN(t, s, 3, 10)
	st, _ = s.OutboxStats()
	if st.Dropped != 18 || st.Depth != 10 {
		t.Fatalf("after reopen %+v, want dropped 18 depth 10", st)
	}
}

func TestOutboxBoundByBytes(t *testing.T) {
	s := storetest.New(t, store.Options{OutboxMaxBytes: 1000})
	appendN(t, s, 1, 100)
	rec := 0
	if st, _ := s.OutboxStats(); st.Bytes > 0 {
		rec = int(st.Bytes)
	}
	if rec == 0 {
		t.Fatal("no bytes counted")
	}
	d := appendN(t, s, 19, 100)
	st, _ := s.OutboxStats()
	if st.Bytes > 1000 {
		t.Fatalf("bytes %d above bound", st.Bytes)
	}
	keep := 1000 / rec
	if st.Depth != keep || d != 20-keep || st.Dropped != uint64(20-keep) {
		t.Fatalf("depth %d dropped %d (stat %d), want %d kept", st.Depth, d, st.Dropped, keep)
	}
	_, _, err := s.AppendOutbox("events", func(uint64) ([]byte, error) { return make([]byte, 2000), nil })
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	st2, _ := s.OutboxStats()
	if st2.LastSeq != st.LastSeq+1 || st2.Failed != 1 || st2.Depth != st.Depth || st2.Bytes != st.Bytes {
		t.Fatalf("an oversized record must take a seq and count as failed, nothing else: %+v -> %+v", st, st2)
	}
}

// TestOutboxFailedAppendTakesSeq: a seq handed to build is never handed
// out again, the failure is counted, and both reach the file with the next
// commit.
func TestOutboxFailedAppendTakesSeq(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := storetest.Open(t, path, store.Options{})
	boom := errors.New("boom")
	seq, _, err := s.AppendOutbox("events", func(uint64) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) || seq != 1 {
		t.Fatalf("seq %d err %v", seq, err)
	}
	seq, _, _ = s.AppendOutbox("events", func(uint64) ([]byte, error) { return []byte("{}"), nil })
	if seq != 2 {
		t.Fatalf("seq %d, want 2", seq)
	}
	if st, _ := s.OutboxStats(); st.Failed != 1 || st.LastSeq != 2 || st.Depth != 1 {
		t.Fatalf("stats %+v", st)
	}
	s.Close()
	s = storetest.Open(t, path, store.Options{})
	if st, _ := s.OutboxStats(); st.Failed != 1 || st.LastSeq != 2 || st.Depth != 1 {
		t.Fatalf("after reopen %+v", st)
	}
}

// TestOutboxIfRoomNeverEvicts: a notice appended with AppendOutboxIfRoom
// pushes nothing out and takes no seq when there is no room.
func TestOutboxIfRoomNeverEvicts(t *testing.T) {
	s := storetest.New(t, store.Options{OutboxMaxMessages: 3})
	appendN(t, s, 2, 10)
	note := func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, `{"seq":%d}`, seq), nil }
	if seq, err := s.AppendOutboxIfRoom("events", note); err != nil || seq != 3 {
		t.Fatalf("with room: seq %d err %v", seq, err)
	}
	if _, err := s.AppendOutboxIfRoom("events", note); !errors.Is(err, store.ErrOutboxFull) {
		t.Fatalf("without room: %v", err)
	}
	st, _ := s.OutboxStats()
	if st.Depth != 3 || st.Dropped != 0 || st.LastSeq != 3 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	msgs, _ := s.OutboxAfter(0, 10)
	if got := seqs(msgs); got != "1,2,3" {
		t.Fatalf("kept %s", got)
	}
}

func TestOutboxSetLimits(t *testing.T) {
	s := storetest.New(t, store.Options{})
	appendN(t, s, 10, 1)
	s.SetOutboxLimits(4, 0)
	if d := appendN(t, s, 1, 1); d != 7 {
		t.Fatalf("dropped %d after lowering the bound, want 7", d)
	}
}

func BenchmarkOutboxAppend(b *testing.B) {
	s := storetest.New(b, store.Options{})
	payload := []byte(strings.Repeat("h", 1200)) // about one health document
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, _, err := s.AppendOutbox("health", func(uint64) ([]byte, error) { return payload, nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkOutboxDrain reads and deletes in batches of 64, as the uplink
// drainer does after PUBACKs.
func BenchmarkOutboxDrain(b *testing.B) {
	s := storetest.New(b, store.Options{OutboxMaxMessages: 1 << 30, OutboxMaxBytes: 1 << 40})
	payload := []byte(strings.Repeat("h", 1200))
	for range b.N {
		if _, _, err := s.AppendOutbox("health", func(uint64) ([]byte, error) { return payload, nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var after uint64
	drained := 0
	for drained < b.N {
		msgs, err := s.OutboxAfter(after, 64)
		if err != nil || len(msgs) == 0 {
			b.Fatalf("read: %d %v", len(msgs), err)
		}
		ss := make([]uint64, len(msgs))
		for i, m := range msgs {
			ss[i] = m.Seq
		}
		if err := s.DeleteOutbox(ss...); err != nil {
			b.Fatal(err)
		}
		after = ss[len(ss)-1]
		drained += len(msgs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestSeqAfterCrashWithFailedAppends: a crash while appends fail (the disk
// still full, so nothing could be saved) resumes seq after the last stored
// message. The seqs handed out again belonged to messages that were never
// stored, so never published: the fleet sees no seq twice.
func TestSeqAfterCrashWithFailedAppends(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Open(t, filepath.Join(dir, store.FileName), store.Options{})
	appendN(t, s, 2, 1)
	for range 2 {
		if _, _, err := s.AppendOutbox("events", func(uint64) ([]byte, error) { return nil, errors.New("no space") }); err == nil {
			t.Fatal("want error")
		}
	}
	// The file as a power cut would leave it: every commit is on disk.
	b, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), store.FileName)
	if err := os.WriteFile(crashed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := storetest.Open(t, crashed, store.Options{})
	if c.Recovered() != nil {
		t.Fatalf("recovered %+v", c.Recovered())
	}
	msgs, _ := c.OutboxAfter(0, 10)
	if got := seqs(msgs); got != "1,2" {
		t.Fatalf("stored %s", got)
	}
	if seq, _, _ := c.AppendOutbox("events", func(uint64) ([]byte, error) { return []byte("{}"), nil }); seq != 3 {
		t.Fatalf("seq %d after the crash, want 3 (never stored before)", seq)
	}
}
