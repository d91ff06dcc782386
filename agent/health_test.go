package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/uplink"
)

type fixedMetrics struct{}

func (fixedMetrics) Metrics(context.Context) (hal.Metrics, error) {
	temp := 51.5
	return hal.Metrics{CPUPercent: 12.5, MemTotalBytes: 1 << 30, MemUsedBytes: 1 << 28, DiskFreeBytes: 5 << 30,
		TemperatureC: &temp, Uptime: time.Hour}, errors.New("read something: partial")
}

type listPaths []streaming.PathInfo

func (l listPaths) Paths() []streaming.PathInfo { return l }

// failingStore makes appends fail while fail is set, the way a full disk
// does: the store hands out the seq, the write fails, the seq is gone.
type failingStore struct {
	*store.Store
	fail atomic.Bool
}

var errNoSpace = errors.New("write camgate.db: no space left on device")

func (f *failingStore) wrap(build func(uint64) ([]byte, error)) func(uint64) ([]byte, error) {
	if !f.fail.Load() {
		return build
	}
	return func(uint64) ([]byte, error) { return nil, errNoSpace }
}

func (f *failingStore) AppendOutbox(kind string, build func(uint64) ([]byte, error)) (uint64, int, error) {
	return f.Store.AppendOutbox(kind, f.wrap(build))
}

func (f *failingStore) AppendOutboxIfRoom(kind string, build func(uint64) ([]byte, error)) (uint64, error) {
	return f.Store.AppendOutboxIfRoom(kind, f.wrap(build))
}

// queued decodes every message in the outbox.
type queued struct {
	seq    uint64
	kind   string
	event  uplink.Event
	notice uplink.OutboxDropped
	health uplink.Health
}

func outboxContents(t *testing.T, st *store.Store) []queued {
	t.Helper()
	msgs, err := st.OutboxAfter(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []queued
	for _, m := range msgs {
		q := queued{seq: m.Seq, kind: m.Kind}
		var err error
		if m.Kind == uplink.KindHealth {
			err = json.Unmarshal(m.Payload, &q.health)
		} else if err = json.Unmarshal(m.Payload, &q.event); err == nil && q.event.Type == uplink.EventOutboxDropped {
			raw, _ := json.Marshal(q.event.Detail)
			err = json.Unmarshal(raw, &q.notice)
		}
		if err != nil {
			t.Fatalf("seq %d: %v", m.Seq, err)
		}
		out = append(out, q)
	}
	return out
}

func notices(qs []queued) (n []queued) {
	for _, q := range qs {
		if q.event.Type == uplink.EventOutboxDropped {
			n = append(n, q)
		}
	}
	return n
}

// TestFailedAppendsShowAsGapsAndOneNotice: appends that fail take their
// seq (the fleet sees the gap), count in health and /metrics, and once
// appends succeed again one outbox.dropped event gives the exact count.
// Streaming is not involved: nothing blocks on the failing disk.
func TestFailedAppendsShowAsGapsAndOneNotice(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	fs := &failingStore{Store: storetest.Open(t, path, store.Options{})}
	ob := &outbox{st: fs, log: zerolog.Nop()}
	events := newEventSink(zerolog.Nop(), true)
	h := &healthSource{id: "cg-1", store: fs.Store, outbox: ob, events: events, paths: listPaths{}}
	prev := map[string]streaming.PathInfo{}
	for i := range 3 {
		ob.appendEvent(uplink.Event{Type: "test", Detail: i}) // seqs 1-3
	}
	fs.fail.Store(true)
	for i := range 5 {
		ob.appendEvent(uplink.Event{Type: "test", Detail: i}) // seqs 4-8 fail
	}
	h.round(context.Background(), prev) // health 9 and the notice 10 fail too
	if st, _ := fs.OutboxStats(); st.Failed != 7 || st.LastSeq != 10 || st.Depth != 3 {
		t.Fatalf("while failing: %+v", st)
	}
	fs.fail.Store(false)
	h.round(context.Background(), prev) // health 11, notice 12
	h.round(context.Background(), prev) // health 13, nothing new to notice

	qs := outboxContents(t, fs.Store)
	var got []uint64
	for _, q := range qs {
		got = append(got, q.seq)
	}
	if fmt.Sprint(got) != "[1 2 3 11 12 13]" {
		t.Fatalf("seqs %v", got)
	}
	n := notices(qs)
	if len(n) != 1 {
		t.Fatalf("%d notices", len(n))
	}
	d := n[0].notice
	if d.Dropped != 7 || d.Failed != 7 || d.Evicted != 0 || d.FirstFailedSeq != 4 || d.LastFailedSeq != 10 ||
		!strings.Contains(d.Reason, errNoSpace.Error()) || d.Since.IsZero() {
		t.Fatalf("notice %+v", d)
	}
	if qs[3].health.Uplink.AppendFailed != 7 || qs[5].health.Uplink.AppendFailed != 7 {
		t.Fatalf("health appendFailed %d, %d", qs[3].health.Uplink.AppendFailed, qs[5].health.Uplink.AppendFailed)
	}
	if v := metric(t, h, "camgate_outbox_append_failed_total"); v != 7 {
		t.Fatalf("/metrics: %v", v)
	}
	// The count and the seq survive a restart of the store.
	if err := fs.Store.Close(); err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, path, store.Options{})
	if s, _ := st.OutboxStats(); s.Failed != 7 || s.LastSeq != 13 {
		t.Fatalf("after reopen %+v", s)
	}
}

func metric(t *testing.T, h *healthSource, name string) float64 {
	t.Helper()
	for _, f := range h.Metrics(context.Background()) {
		if f.Name == name && len(f.Samples) == 1 {
			return f.Samples[0].Value
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestOutboxOverflowKeepsTelemetry: during an outage with a bound of 5
// messages the outbox holds only real telemetry however long it lasts (no
// notice pushes any out); when the drain makes room, one notice reports
// exactly the messages pushed out, which are exactly the fleet's gaps.
func TestOutboxOverflowKeepsTelemetry(t *testing.T) {
	st := storetest.New(t, store.Options{OutboxMaxMessages: 5})
	ob := &outbox{st: st, log: zerolog.Nop()}
	events := newEventSink(zerolog.Nop(), true)
	h := &healthSource{id: "cg-1", store: st, outbox: ob, events: events, paths: listPaths{}}
	prev := map[string]streaming.PathInfo{}
	for i := range 12 {
		ob.appendEvent(uplink.Event{Type: "test", Detail: i})
	}
	for range 50 { // a long outage: 50 health intervals
		h.round(context.Background(), prev)
		if n := notices(outboxContents(t, st)); len(n) > 0 {
			t.Fatalf("a notice took a place in a full outbox: seq %d", n[0].seq)
		}
	}
	qs := outboxContents(t, st)
	if len(qs) != 5 || qs[0].seq != 58 || qs[4].seq != 62 {
		t.Fatalf("kept %d messages from seq %d; want the newest 5, 58..62", len(qs), qs[0].seq)
	}
	// The link is back: the drain takes what is queued.
	var delivered []uint64
	for _, q := range qs {
		delivered = append(delivered, q.seq)
	}
	if err := st.DeleteOutbox(delivered...); err != nil {
		t.Fatal(err)
	}
	h.round(context.Background(), prev) // health 63, notice 64
	h.round(context.Background(), prev) // health 65, no notice
	qs = outboxContents(t, st)
	n := notices(qs)
	if len(n) != 1 || len(qs) != 3 {
		t.Fatalf("%d notices among %d messages", len(n), len(qs))
	}
	// The fleet got 58..62 and 63..65: seqs 1..57 are the gaps.
	d := n[0].notice
	if d.Evicted != 57 || d.Dropped != 57 || d.Failed != 0 {
		t.Fatalf("notice %+v, want 57 evicted", d)
	}
	if s, _ := st.OutboxStats(); s.Dropped != 57 {
		t.Fatalf("store %+v", s)
	}
}

// TestEventSinkLossesReported: events dropped on a full queue are counted
// in health, /metrics and the next notice; they took no seq.
func TestEventSinkLossesReported(t *testing.T) {
	st := storetest.New(t, store.Options{})
	ob := &outbox{st: st, log: zerolog.Nop()}
	events := newEventSink(zerolog.Nop(), true)
	h := &healthSource{id: "cg-1", store: st, outbox: ob, events: events, paths: listPaths{}}
	for i := range eventQueue + 10 { // nobody drains the queue
		events.emit("test", "", i)
	}
	if doc := h.snapshot(context.Background()); doc.Uplink.EventsLost != 10 {
		t.Fatalf("health eventsLost %d", doc.Uplink.EventsLost)
	}
	if v := metric(t, h, "camgate_events_lost_total"); v != 10 {
		t.Fatalf("/metrics: %v", v)
	}
	prev := map[string]streaming.PathInfo{}
	h.round(context.Background(), prev)
	h.round(context.Background(), prev)
	n := notices(outboxContents(t, st))
	if len(n) != 1 || n[0].notice.EventsLost != 10 || n[0].notice.Dropped != 0 {
		t.Fatalf("notices %+v", n)
	}
}

func TestHealthDocument(t *testing.T) {
	st := storetest.New(t, store.Options{})
	paths := listPaths{
		{Name: "cam1", Source: "rtsp://admin:***@10.0.0.64/s", State: streaming.StateReady, Readers: 2, BytesIn: 1000, BytesOut: 2000, BitrateIn: 8000, Reconnects: 1},
		{Name: "door", Source: "publisher", State: streaming.StateIdle, LastError: "x"},
	}
	h := &healthSource{id: "cg-1", version: "v1", started: time.Now().Add(-time.Minute), bootCount: 3,
		store: st, paths: paths, system: fixedMetrics{}}
	doc := h.snapshot(context.Background())
	if doc.Agent.ID != "cg-1" || doc.Agent.BootCount != 3 || doc.Agent.Uptime < 59 || doc.Agent.Goroutines == 0 {
		t.Fatalf("agent %+v", doc.Agent)
	}
	if doc.System.CPUPercent == nil || *doc.System.CPUPercent != 12.5 || doc.System.DiskFree != 5<<30 || *doc.System.TemperatureC != 51.5 {
		t.Fatalf("system figures lost on a partial read: %+v", doc.System)
	}
	if len(doc.Paths) != 2 || doc.Paths[0].State != "ready" || doc.Paths[0].Readers != 2 || doc.Paths[1].LastError != "x" {
		t.Fatalf("paths %+v", doc.Paths)
	}
	b, _ := json.Marshal(doc)
	if strings.Contains(string(b), "admin:") && !strings.Contains(string(b), "admin:***@") {
		t.Fatalf("source not redacted: %s", b)
	}
	// Lifetime stats: two folds add only the growth.
	prev := map[string]streaming.PathInfo{}
	h.foldStats(prev)
	paths[0].BytesIn = 1500
	h.foldStats(prev)
	all, _ := st.AllPathStats()
	if all["cam1"].BytesIn != 1500 || all["cam1"].BytesOut != 2000 || all["cam1"].Reconnects != 1 {
		t.Fatalf("stats %+v", all["cam1"])
	}
	fams := h.Metrics(context.Background())
	names := map[string]bool{}
	for _, f := range fams {
		names[f.Name] = true
	}
	for _, want := range []string{"camgate_path_bytes_in_total", "camgate_outbox_depth", "camgate_system_cpu_percent", "camgate_system_temperature_celsius"} {
		if !names[want] {
			t.Errorf("metric %s missing", want)
		}
	}
}

// BenchmarkHealthDocument reports the encoded size of a health message for
// a box with 8 cameras.
func BenchmarkHealthDocument(b *testing.B) {
	st := storetest.New(b, store.Options{})
	var paths listPaths
	for i := range 8 {
		paths = append(paths, streaming.PathInfo{Name: fmt.Sprintf("cam%d", i), Source: "rtsp://admin:***@10.0.0.64:554/Streaming/Channels/101",
			State: streaming.StateReady, OnDemand: true, Readers: 3, BytesIn: 123456789, BytesOut: 987654321, BitrateIn: 4.2e6, Reconnects: 2})
	}
	h := &healthSource{id: "cg-3f9a1c2b7d44", version: "v1.0.0", started: time.Now(), bootCount: 12, store: st, paths: paths, system: fixedMetrics{}}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		doc := h.snapshot(context.Background())
		doc.Seq = 123456
		buf, _ := json.Marshal(doc)
		n = len(buf)
	}
	b.ReportMetric(float64(n), "bytes/msg")
}
