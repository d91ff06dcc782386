package record

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/streaming"
)

// An on-demand camera that is recorded stays pulled, with no reader but
// the recorder, past sourceOnDemandCloseAfter; segments rotate in real
// time; turning recording off lets the camera go.
func TestOnDemandCameraPulledWhileRecording(t *testing.T) {
	cam := testcam.New(t, func(c *testcam.Camera) { c.FPS, c.GOP = 25, 12 })
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: zerolog.Nop()}, map[string]streaming.PathConfig{
		"cam": {Source: cam.URL(), SourceOnDemand: true, CloseAfter: 100 * time.Millisecond, RTSPTransport: "tcp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := New(Options{Log: zerolog.Nop(), Paths: m, BaseDir: t.TempDir(), RetryMin: 20 * time.Millisecond},
		map[string]PathConfig{"cam": {Record: true, SegmentDuration: time.Second, PartDuration: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mdone, rdone := make(chan struct{}), make(chan struct{})
	go func() { _ = m.Run(ctx); close(mdone) }()
	go func() { _ = rec.Run(ctx); close(rdone) }()
	defer func() { cancel(); <-rdone; <-mdone }()

	waitFor(t, "the camera to be pulled", func() bool { return cam.Readers() == 1 })
	start := time.Now()
	waitFor(t, "three closed segments", func() bool {
		n := 0
		for _, v := range rec.idx.view("cam") {
			if !v.open {
				n++
			}
		}
		return n >= 3
	})
	if cam.Readers() != 1 || cam.Sessions() != 1 {
		t.Fatalf("after %s with no reader: %d readers, %d sessions on the camera; want the one pull kept", time.Since(start), cam.Readers(), cam.Sessions())
	}
	st, _ := rec.Status("cam")
	if st.State != "recording" || st.Segments < 3 {
		t.Fatalf("status %+v", st)
	}
	for _, v := range rec.idx.view("cam")[:3] {
		if v.dur < time.Second || v.dur > 1600*time.Millisecond {
			t.Errorf("segment of %s: want about 1 s, cut at a keyframe", v.dur)
		}
	}
	if err := rec.SetRecording("cam", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the camera to be let go", func() bool { return cam.Readers() == 0 })
	if st, _ := rec.Status("cam"); st.State != "off" || st.Record {
		t.Errorf("status after recording was turned off: %+v", st)
	}
}

// A track that cannot be stored is named in an event; the others are
// recorded.
func TestUnsupportedTrack(t *testing.T) {
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: time.Second}, fast)
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := &feeder{t: t, aus: fakeAUs(25, 600), fps: 25, wall: wall, ssrc: 9}
	f.vf = &format.H264{PayloadTyp: 96, SPS: testcam.SPS, PPS: testcam.PPS, PacketizationMode: 1}
	f.desc = &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{f.vf}},
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}},
	}}
	if err := f.initEncoder(); err != nil {
		t.Fatal(err)
	}
	pub, err := h.m.Publish("cam", f.desc, streaming.ReaderRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	waitFor(t, "the recorder to read", func() bool { return pub.Stream().Readers() == 1 })
	f.frames(3 * 25)
	pub.Close()
	segs := h.closedSegments("cam")
	if len(segs) != 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	ev := h.ev.of(EventUnsupported)
	if len(ev) != 1 || !strings.Contains(ev[0].Detail, "track 2 (video)") || !strings.Contains(ev[0].Detail, "M-JPEG") {
		t.Fatalf("events %+v: want one naming track 2 and its codec", ev)
	}
	if hd := header(t, segs[0].file); len(hd.init.Tracks) != 1 {
		t.Errorf("%d tracks recorded, want the H.264 one", len(hd.init.Tracks))
	}
}

// A name made by the all_others entry is recorded while its publisher is
// there; the recorder lets it go when it leaves, and a new SSRC (the
// publisher came back) starts a new recording that the list joins.
func TestDynamicPathAndReconnect(t *testing.T) {
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second}, fast)
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := publish(t, h.m, "site/door", fakeAUs(25, 600), true, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	f.frames(3 * 25)
	// The camera's clock restarts with a new SSRC and timestamps; the
	// wall clock goes on.
	f.ssrc, f.tsBase = 0x7777, 123456789
	f.frames(3 * 25)
	f.pub.Close()
	segs := h.closedSegments("site/door")
	waitFor(t, "the worker to leave", func() bool {
		h.rec.mu.Lock()
		defer h.rec.mu.Unlock()
		_, ok := h.rec.workers["site/door"]
		return !ok
	})
	var total time.Duration
	for _, s := range segs {
		total += s.dur
	}
	// 0-2 s, 2-3 s (ended by the new SSRC), 3-5 s, 5-6 s.
	if len(segs) != 4 || !segs[2].start.Equal(wall.Add(3*time.Second)) {
		dumpSegs(t, segs)
		t.Errorf("%d segments: want the new SSRC to start one at 3 s", len(segs))
	}
	if total < 5800*time.Millisecond || total > 6*time.Second {
		dumpSegs(t, segs)
		t.Errorf("%s recorded of 6 s", total)
	}
	spans, err := h.rec.Spans("site/door")
	if err != nil || len(spans) != 1 || !spans[0].Start.Equal(wall) {
		t.Errorf("spans %+v %v: want one from %s", spans, err, wall)
	}
	if st, ok := h.rec.Status("site/door"); !ok || st.State != "waiting" || st.Segments != len(segs) {
		t.Errorf("status %+v %v", st, ok)
	}
}
