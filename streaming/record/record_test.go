package record

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// clock is a settable time for retention by age.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func fast(o *Options) {
	o.RetentionInterval, o.EventInterval = 10*time.Millisecond, 20*time.Millisecond
}
func withClock(c *clock) func(*Options) {
	return func(o *Options) { fast(o); o.Now = c.now }
}

// Segments that ended longer than recordDeleteAfter ago are deleted, the
// rest stay, and the deletions are told in one event.
func TestRetentionByAge(t *testing.T) {
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var c clock
	c.set(wall.Add(30 * time.Second))
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 5 * time.Second, DeleteAfter: time.Hour}, withClock(&c))
	f := publish(t, h.m, "cam", fakeAUs(25, 600), false, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	f.frames(30 * 25)
	f.pub.Close()
	if n := len(h.closedSegments("cam")); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}
	// An hour after the third segment ended: it and the two before go.
	c.set(wall.Add(time.Hour + 15*time.Second + time.Millisecond))
	waitFor(t, "old segments to go", func() bool { return len(h.rec.idx.view("cam")) == 3 })
	for _, v := range h.rec.idx.view("cam") {
		if v.start.Before(wall.Add(15 * time.Second)) {
			t.Errorf("segment of %s kept", v.start)
		}
	}
	files, _ := filepath.Glob(filepath.Join(h.dir, "recordings", "cam", "*.mp4"))
	if len(files) != 3 {
		t.Errorf("%d files on disk, want 3: %v", len(files), files)
	}
	waitFor(t, "the deletion event", func() bool { return len(h.ev.of(EventDeleted)) > 0 })
	ev := h.ev.of(EventDeleted)
	if len(ev) != 1 || ev[0].Path != "cam" || !strings.Contains(ev[0].Detail, "deleted 3 segment(s)") || !strings.Contains(ev[0].Detail, "recordDeleteAfter") {
		t.Fatalf("deletion events %+v, want one telling of 3 segments for recordDeleteAfter", ev)
	}
}

// diskBytes is what the files under dir take.
func diskBytes(t *testing.T, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// A path's recordings stay within recordMaxBytes: the oldest segments go
// as new parts come, and recording goes on.
func TestMaxBytes(t *testing.T) {
	const budget = 1 << 20
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, MaxBytes: budget}, fast)
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := publish(t, h.m, "cam", fakeAUs(25, 8000), false, wall) // ~1.9 Mbit/s
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	for range 30 {
		f.frames(25)
		waitFor(t, "the second to be written", func() bool {
			st, _ := h.rec.Status("cam")
			return st.Written >= uint64(f.n-25)*8000
		})
		if used := diskBytes(t, h.dir); used > budget {
			t.Fatalf("after %d s: %d bytes on disk, budget %d", f.n/25, used, budget)
		}
	}
	f.pub.Close()
	segs := h.closedSegments("cam")
	if last := segs[len(segs)-1]; !last.end().Equal(wall.Add(30 * time.Second)) {
		t.Errorf("the last segment ends at %s, want the end of the recording", last.end())
	}
	if segs[0].start.Before(wall.Add(20 * time.Second)) {
		t.Errorf("oldest segment kept starts %s: the budget holds less than that", segs[0].start)
	}
	waitFor(t, "the deletion event", func() bool { return len(h.ev.of(EventDeleted)) > 0 })
	if ev := h.ev.of(EventDeleted)[0]; !strings.Contains(ev.Detail, "recordMaxBytes") {
		t.Errorf("deletion event %+v", ev)
	}
}

// fakeVolume is a volume of total bytes holding what is under dir.
func fakeVolume(t *testing.T, dir string, total uint64, minSeen *atomic.Int64) func(string) (uint64, uint64, error) {
	return func(string) (uint64, uint64, error) {
		used := uint64(diskBytes(t, dir))
		if used > total {
			return 0, total, nil
		}
		free := total - used
		if minSeen != nil && (minSeen.Load() == 0 || int64(free) < minSeen.Load()) {
			minSeen.Store(int64(free))
		}
		return free, total, nil
	}
}

// With a volume of 4 MiB and 1 MiB to keep free, recording goes on for
// ever: the oldest segments make room, and no part is written into the
// last MiB.
func TestMinFreeBytes(t *testing.T) {
	const total, keep = 4 << 20, 1 << 20
	var dir string
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, MinFreeBytes: keep},
		func(o *Options) {
			fast(o)
			dir = o.BaseDir
			o.DiskUsage = fakeVolume(t, dir, total, nil)
		})
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := publish(t, h.m, "cam", fakeAUs(25, 8000), false, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	for range 40 {
		f.frames(25)
		waitFor(t, "the second to be written", func() bool {
			st, _ := h.rec.Status("cam")
			return st.Written >= uint64(f.n-25)*8000
		})
		if used := diskBytes(t, dir); used > total-keep {
			t.Fatalf("after %d s: %d bytes used of %d, %d to keep free", f.n/25, used, total, keep)
		}
	}
	f.pub.Close()
	segs := h.closedSegments("cam")
	if last := segs[len(segs)-1]; !last.end().Equal(wall.Add(40 * time.Second)) {
		t.Errorf("the last segment ends at %s, want the end of the recording", last.end())
	}
	if n := len(h.ev.of(EventError)); n != 0 {
		t.Errorf("%d errors: %+v", n, h.ev.of(EventError))
	}
	waitFor(t, "the deletion event", func() bool { return len(h.ev.of(EventDeleted)) > 0 })
	if ev := h.ev.of(EventDeleted)[0]; !strings.Contains(ev.Detail, "recordMinFreeBytes") {
		t.Errorf("deletion event %+v", ev)
	}
}
