package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// TestOutboxOverflowReportedExactly: with the broker away and a bound of 5
// messages, 12 events drop 7; the next health carries the exact total and an
// outbox.dropped event says how many went since the last report.
func TestOutboxOverflowReportedExactly(t *testing.T) {
	st := storetest.New(t, store.Options{OutboxMaxMessages: 5})
	ob := &outbox{st: st, log: zerolog.Nop()}
	for i := range 12 {
		ob.appendEvent(uplink.Event{Type: "test", Detail: i})
	}
	if got := ob.dropped.Load(); got != 7 {
		t.Fatalf("counted %d drops, want 7", got)
	}
	events := newEventSink(zerolog.Nop(), true)
	h := &healthSource{id: "cg-1", store: st, outbox: ob, paths: listPaths{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one round: runHealth appends once, then sees ctx done
	if err := h.runHealth(ctx, time.Hour, events); err != nil {
		t.Fatal(err)
	}
	// The health append itself dropped the oldest event once more.
	msgs, _ := st.OutboxAfter(0, 10)
	var doc uplink.Health
	last := msgs[len(msgs)-1]
	if last.Kind != uplink.KindHealth || json.Unmarshal(last.Payload, &doc) != nil {
		t.Fatalf("last message %s %s", last.Kind, last.Payload)
	}
	if doc.Uplink.Dropped != 7 || doc.Seq != 13 {
		t.Fatalf("health reports dropped %d at seq %d, want 7 at 13", doc.Uplink.Dropped, doc.Seq)
	}
	select {
	case ev := <-events.ch:
		d, _ := ev.Detail.(map[string]any)
		if ev.Type != uplink.EventOutboxDropped || d["dropped"] != uint64(8) || d["total"] != uint64(7) {
			t.Fatalf("event %+v", ev)
		}
	default:
		t.Fatal("no outbox.dropped event")
	}
	if s, _ := st.OutboxStats(); s.Dropped != 8 || s.Depth != 5 {
		t.Fatalf("store %+v", s)
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
