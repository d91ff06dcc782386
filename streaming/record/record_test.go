package record

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// closedSegments waits for the recording of name to end (the publisher
// left) and returns its segments.
func (h *harness) closedSegments(name string) []segView {
	h.t.Helper()
	waitFor(h.t, "the recording to end", func() bool {
		st, _ := h.rec.Status(name)
		if st.State == "recording" {
			return false
		}
		for _, v := range h.rec.idx.view(name) {
			if v.open {
				return false
			}
		}
		return true
	})
	return h.rec.idx.view(name)
}

// A minute of video at 25 fps, keyframes every second, is cut into 5 s
// segments whose durations add up, and listed as one span.
func TestRotation(t *testing.T) {
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 5 * time.Second, PartDuration: time.Second}, nil)
	wall := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	f := publish(t, h.m, "cam", fakeAUs(25, 600), true, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	f.frames(60 * 25)
	f.pub.Close()
	segs := h.closedSegments("cam")
	dumpSegs(t, segs)
	if len(segs) != 12 {
		t.Fatalf("%d segments, want 12", len(segs))
	}
	var total time.Duration
	for i, s := range segs {
		want := wall.Add(time.Duration(i) * 5 * time.Second)
		if !s.start.Equal(want) {
			t.Errorf("segment %d starts %s, want %s", i, s.start, want)
		}
		total += s.dur
		hd := header(t, s.file)
		if hd.duration != s.dur.Truncate(time.Millisecond) {
			t.Errorf("segment %d: mvhd says %s, index %s", i, hd.duration, s.dur)
		}
	}
	// The last frame lasts as long as the one before it: 60 s exactly.
	if total != 60*time.Second {
		t.Errorf("segments last %s in all, want 60s", total)
	}
	spans, err := h.rec.Spans("cam")
	if err != nil || len(spans) != 1 || !spans[0].Start.Equal(wall) || spans[0].Duration != 60*time.Second {
		t.Fatalf("spans %+v, %v: want one of 60s from %s", spans, err, wall)
	}
}

func header(t *testing.T, file string) *segmentHeader {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := readHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func dumpSegs(t *testing.T, segs []segView) {
	for _, s := range segs {
		t.Logf("%s %s %s %d", s.file, s.start.Format(time.RFC3339Nano), s.dur, s.size)
	}
}
