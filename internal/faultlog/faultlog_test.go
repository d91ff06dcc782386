package faultlog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type line struct {
	Level       string `json:"level"`
	Message     string `json:"message"`
	PacketsLost uint64 `json:"packetsLost"`
	Undecodable uint64 `json:"undecodable"`
	Unsent      uint64 `json:"unsent"`
	From        string `json:"from"`
	LastError   string `json:"lastError"`
	Over        any    `json:"over"` // format set by internal/log; absent on a first line
}

func lines(t *testing.T, b *strings.Builder) []line {
	t.Helper()
	var out []line
	for _, s := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if s == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		out = append(out, l)
	}
	return out
}

// TestSummedPerInterval: the first fault is logged at once; the faults of
// the next interval make one line with their sums, written by the first
// fault after the interval or by Flush; errors are redacted; Totals count
// everything.
func TestSummedPerInterval(t *testing.T) {
	var b strings.Builder
	l := New(zerolog.New(&b), "damaged", time.Minute)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	l.Lost(3, "cam")
	if got := lines(t, &b); len(got) != 1 || got[0].PacketsLost != 3 || got[0].Level != "warn" || got[0].Message != "damaged" || got[0].From != "cam" || got[0].Over != nil {
		t.Fatalf("first fault: %+v", got)
	}
	for range 1000 {
		now = now.Add(10 * time.Millisecond) // 10 s in all: within the minute
		l.Lost(1, "cam")
		l.Undecodable(errors.New("bad packet from rtsp://admin:hunter2@10.0.0.9/s"), "cam")
		l.Unsent(errors.New("queue full"), "cam")
	}
	if got := lines(t, &b); len(got) != 1 {
		t.Fatalf("%d lines within the interval", len(got))
	}
	now = now.Add(50 * time.Second)
	l.Lost(2, "cam2")
	got := lines(t, &b)
	if len(got) != 2 {
		t.Fatalf("%d lines after the interval", len(got))
	}
	if g := got[1]; g.PacketsLost != 1002 || g.Undecodable != 1000 || g.Unsent != 1000 || g.From != "cam2" || g.Over == nil || g.LastError != "queue full" {
		t.Fatalf("summed line %+v", g)
	}
	l.Flush() // nothing since
	if n := len(lines(t, &b)); n != 2 {
		t.Fatalf("Flush with nothing counted wrote a line (%d)", n)
	}
	l.Undecodable(errors.New("bad packet from rtsp://admin:hunter2@10.0.0.9/s"), "")
	l.Flush()
	got = lines(t, &b)
	if len(got) != 3 || got[2].Undecodable != 1 || strings.Contains(b.String(), "hunter2") || !strings.Contains(got[2].LastError, "10.0.0.9") {
		t.Fatalf("flushed line %+v\n%s", got, b.String())
	}
	if lost, bad := l.Totals(); lost != 1005 || bad != 1001 {
		t.Fatalf("totals %d lost, %d undecodable", lost, bad)
	}
}
