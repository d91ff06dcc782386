package record

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
)

// copyOpen copies the segment being written (its mvhd duration still 0)
// as a crash would leave it, with half a part more at its end.
func copyOpen(t *testing.T, h *harness, to string) (parts int64) {
	t.Helper()
	var open segView
	waitFor(t, "an open segment with parts", func() bool {
		for _, v := range h.rec.idx.view("cam") {
			if v.open && v.dur >= 2*time.Second {
				open = v
				return true
			}
		}
		return false
	})
	b, err := os.ReadFile(open.file)
	if err != nil {
		t.Fatal(err)
	}
	hd, err := readHeader(bytes.NewReader(b))
	if err != nil || hd.duration != 0 {
		t.Fatalf("open segment: duration %s, %v", hd.duration, err)
	}
	var first partInfo
	end, err := scanParts(bytes.NewReader(b), hd.size, func(p partInfo) bool {
		if first.size == 0 {
			first = p
		}
		return true
	})
	if err != nil || first.size == 0 {
		t.Fatalf("open segment of %d bytes: parts up to %d: %v", len(b), end, err)
	}
	// The writer may be in the middle of a part: the copy keeps the
	// complete ones.
	b = b[:end]
	// One more part, cut in the middle of its mdat.
	torn := b[first.off : first.off+first.size*2/3]
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, append(b, torn...), 0o644); err != nil {
		t.Fatal(err)
	}
	return end
}

// A segment a crash left open (no duration, a torn part at its end) is
// cut after its last complete part, given its duration, listed, and
// played; an empty file of the pattern is removed.
func TestRepairOnStart(t *testing.T) {
	aus := realAUs(t)
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: time.Minute, PartDuration: 500 * time.Millisecond}, nil)
	wall := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	f := publish(t, h.m, "cam", aus, true, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	f.frames(5 * 25)

	base := t.TempDir()
	crashed := filepath.Join(base, "recordings", "cam", "2026-02-03_04-05-06-000000.mp4")
	good := copyOpen(t, h, crashed)
	empty := filepath.Join(base, "recordings", "cam", "2026-02-03_05-00-00-000000.mp4")
	if err := os.WriteFile(empty, []byte("\x00\x00\x00\x18ftyp"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.pub.Close()
	h.closedSegments("cam")

	m, err := streaming.NewManager(streaming.ManagerOptions{Log: zerolog.Nop()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec, err := New(Options{Log: zerolog.Nop(), Paths: m, BaseDir: base}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = rec.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the index", func() bool { return len(rec.idx.view("cam")) == 1 })

	info, err := os.Stat(crashed)
	if err != nil || info.Size() != good {
		t.Fatalf("repaired segment: %v, %d bytes, want %d (cut after its last part)", err, info.Size(), good)
	}
	// Files are taken in name order: the empty one goes after the
	// crashed one is indexed.
	waitFor(t, "the file without a header removed", func() bool {
		_, err := os.Stat(empty)
		return os.IsNotExist(err)
	})
	hd := header(t, crashed)
	v := rec.idx.view("cam")[0]
	if hd.duration < 2*time.Second || hd.duration != v.dur.Truncate(time.Millisecond) || !v.start.Equal(wall) {
		t.Errorf("repaired: mvhd %s, index %s from %s", hd.duration, v.dur, v.start)
	}
	decodeClean(t, crashed)
	format, _ := probeDuration(t, crashed)
	if !near(format, hd.duration.Seconds(), 0.05) {
		t.Errorf("ffprobe says %.3f s, the header %s", format, hd.duration)
	}
}
