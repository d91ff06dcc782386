package record

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPlaybackGet times GET /get of 10 s of a 2 Mbit/s recording in
// 1 s parts at the end of a 10 min segment (the worst place to seek to:
// every part before it is skipped by its moof), and GET /list.
//
//	go test -run '^$' -bench Playback -benchtime 20x ./streaming/record/
func BenchmarkPlaybackGet(b *testing.B) {
	h := newHarness(b, PathConfig{Record: true, SegmentDuration: time.Hour, PartDuration: time.Second}, nil)
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := publish(b, h.m, "cam", fakeAUs(25, 8500), false, wall) // ~2 Mbit/s
	waitFor(b, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	for range 600 {
		f.frames(25)
		waitFor(b, "the second to be written", func() bool {
			st, _ := h.rec.Status("cam")
			return st.Written >= uint64(f.n-25)*8500
		})
	}
	f.pub.Close()
	segs := h.closedSegments("cam")
	if len(segs) != 1 || segs[0].size < 130<<20 {
		b.Fatalf("want one segment of 10 min, 2 Mbit/s: %+v", segs)
	}
	base := startPlayback(b, h, nil)
	u := getURL(base, "cam", wall.Add(590*time.Second), 10*time.Second)
	b.Run("get last 10 s of 10 min", func(b *testing.B) {
		var n int64
		for b.Loop() {
			resp, err := http.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			n, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b.ReportMetric(float64(n)/1e6, "MB/answer")
	})
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			resp, err := http.Get(base + "/list?path=cam")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
