package source

import (
	"context"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

func TestDemoClipAccessUnits(t *testing.T) {
	aus, err := splitAccessUnits(demoClip)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != 250 {
		t.Fatalf("access units = %d, want 250 (10 s at 25 fps)", len(aus))
	}
	idr := 0
	for i, au := range aus {
		isIDR := false
		for _, n := range au {
			if n[0]&0x1f == 5 && !isIDR {
				isIDR = true
				idr++
				if i%25 != 0 {
					t.Fatalf("IDR at frame %d, want every 25", i)
				}
			}
			if n[0]&0x1f == 9 {
				t.Fatal("access unit delimiter kept")
			}
		}
	}
	if idr != 10 {
		t.Fatalf("IDR frames = %d, want 10", idr)
	}
	if len(demoClip) > 1<<20 {
		t.Fatalf("demo clip is %d bytes, keep it under 1 MB", len(demoClip))
	}
}

type countSink struct {
	desc   *description.Session
	frames map[uint32]bool
	seq    []uint16
	cancel context.CancelFunc
	want   int
}

func (s *countSink) Ready(d *description.Session) error { s.desc = d; return nil }

func (s *countSink) WriteRTP(_ *description.Media, _ format.Format, p *rtp.Packet, _ time.Time) {
	s.frames[p.Timestamp] = true
	s.seq = append(s.seq, p.SequenceNumber)
	if len(s.frames) >= s.want {
		s.cancel()
	}
}

func TestDemoPlaysWithContinuousTimestamps(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &countSink{frames: map[uint32]bool{}, cancel: cancel, want: 5}
	start := time.Now()
	err := Demo{}.Run(ctx, s)
	if err != context.Canceled {
		t.Fatalf("run: %v", err)
	}
	if d := time.Since(start); d < 4*40*time.Millisecond {
		t.Fatalf("5 frames in %s: not paced at 25 fps", d)
	}
	if s.desc == nil || s.desc.Medias[0].Formats[0].Codec() != "H264" {
		t.Fatal("no H264 description")
	}
	for ts := uint32(0); ts < 5*3600; ts += 3600 {
		if !s.frames[ts] {
			t.Fatalf("frame with timestamp %d missing: %v", ts, s.frames)
		}
	}
	for i := 1; i < len(s.seq); i++ {
		if s.seq[i] != s.seq[i-1]+1 {
			t.Fatalf("sequence gap at %d: %v", i, s.seq)
		}
	}
}
