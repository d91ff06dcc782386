package record

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// span is what a GET /get request covers: contiguous segments, and the
// times within them.
type rangePlan struct {
	segs     []segView
	from, to time.Time
}

// plan finds the segments of name that hold [start, start+dur): the first
// one that does and those joined to it (a gap ends the answer, as in
// MediaMTX). from and to are clipped to what is recorded.
func (r *Recorder) plan(name string, start time.Time, dur time.Duration) (*rangePlan, error) {
	end := start.Add(dur)
	vs := r.idx.view(name)
	var p rangePlan
	for _, v := range vs {
		if v.dur <= 0 {
			continue
		}
		if len(p.segs) == 0 {
			if v.end().After(start) && v.start.Before(end) {
				p.segs = append(p.segs, v)
			}
			continue
		}
		if !v.start.Before(end) || !joinable(p.segs[len(p.segs)-1], v) {
			break
		}
		p.segs = append(p.segs, v)
	}
	if len(p.segs) == 0 {
		return nil, fmt.Errorf("%w for %q between %s and %s", ErrNoRecordings, name,
			start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	}
	p.from = start
	if first := p.segs[0].start; first.After(start) {
		p.from = first
	}
	p.to = end
	if last := p.segs[len(p.segs)-1].end(); last.Before(end) {
		p.to = last
	}
	if !p.to.After(p.from) {
		return nil, fmt.Errorf("%w for %q in the range asked", ErrNoRecordings, name)
	}
	return &p, nil
}

// muxTrack is one track of the answer. Times are in the track's
// timescale, from the answer's start.
type muxTrack struct {
	id    int
	ts    uint32
	video bool

	preroll []*fmp4.Sample // video from the last keyframe before the start
	keyed   bool           // preroll starts with a keyframe
	visible bool           // a sample at or after the start was taken

	out   []*fmp4.Sample // samples of the part being built, the last one held
	first int64          // time of out[0]
	last  int64          // time of the last sample in out
	lastD int64          // its duration as recorded
	done  bool
}

// muxer builds the answer: the init, then one part per part read.
type muxer struct {
	w      io.Writer
	init   []byte // written with the first part
	tracks map[int]*muxTrack
	order  []*muxTrack
	endT   time.Duration // the answer's length
	seq    uint32
	buf    seekablebuffer.Buffer
	wrote  bool
	// flushed is called after each part is written (HTTP flush).
	flushed func()
}

func newMuxer(w io.Writer, init *fmp4.Init, length time.Duration) (*muxer, error) {
	b, durs, err := marshalInit(init.Tracks)
	if err != nil {
		return nil, err
	}
	if err := durs.write(sliceWriterAt(b), length); err != nil {
		return nil, err
	}
	m := &muxer{w: w, init: b, tracks: map[int]*muxTrack{}, endT: length}
	for _, t := range init.Tracks {
		mt := &muxTrack{id: t.ID, ts: t.TimeScale, video: t.Codec.IsVideo()}
		m.tracks[t.ID] = mt
		m.order = append(m.order, mt)
	}
	return m, nil
}

type sliceWriterAt []byte

func (s sliceWriterAt) WriteAt(p []byte, off int64) (int, error) {
	return copy(s[off:], p), nil
}

// add takes one sample of track id at time dts (answer time, ticks; it may
// be negative: before the start) lasting dur ticks as recorded.
func (m *muxer) add(id int, dts int64, dur uint32, s *fmp4.Sample) {
	t := m.tracks[id]
	if t == nil || t.done {
		return
	}
	if dts >= durationToTicks(m.endT, t.ts) {
		t.done = true
		return
	}
	if dts < 0 {
		if !t.video {
			return // audio starts with its first frame inside the range
		}
		if !s.IsNonSyncSample {
			t.preroll, t.keyed = t.preroll[:0], true
		}
		if t.keyed {
			t.preroll = append(t.preroll, s)
		}
		return
	}
	if !t.visible {
		if t.video && len(t.preroll) == 0 && s.IsNonSyncSample {
			return // nothing decodable yet
		}
		t.visible = true
		// The frames a decoder needs before the first one shown are
		// spread over the time before it (a tick each when it is the
		// start itself, which moves it by as many ticks): the answer
		// starts on time and its timestamps only grow.
		n := int64(len(t.preroll))
		if n > 0 && dts < n {
			dts = n
		}
		for k, p := range t.preroll {
			m.append(t, dts*int64(k)/n, 1, p)
		}
		t.preroll = nil
	}
	m.append(t, dts, int64(dur), s)
}

// append adds a sample after the held one, whose duration it decides.
func (m *muxer) append(t *muxTrack, dts, dur int64, s *fmp4.Sample) {
	if len(t.out) > 0 {
		if dts < t.last {
			dts = t.last
		}
		t.out[len(t.out)-1].Duration = uint32(dts - t.last)
	} else {
		t.first = dts
	}
	c := *s
	t.out = append(t.out, &c)
	t.last, t.lastD = dts, dur
}

// flush writes a part with every sample but each track's last, whose
// duration the next sample decides; final writes those too.
func (m *muxer) flush(final bool) error {
	part := fmp4.Part{SequenceNumber: m.seq}
	for _, t := range m.order {
		n := len(t.out)
		if !final {
			n--
		}
		if n <= 0 {
			continue
		}
		if final {
			last := t.out[len(t.out)-1]
			d := min(t.lastD, durationToTicks(m.endT, t.ts)-t.last)
			last.Duration = uint32(max(d, 0))
		}
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: uint64(t.first), Samples: t.out[:n]})
		if final {
			t.out = nil
			continue
		}
		held := t.out[n]
		next := t.first
		for _, s := range t.out[:n] {
			next += int64(s.Duration)
		}
		t.out = append(t.out[:0:0], held)
		t.first = next
	}
	if len(part.Tracks) == 0 {
		if final && !m.wrote {
			return ErrNoRecordings
		}
		return nil
	}
	m.seq++
	m.buf.Reset()
	if !m.wrote {
		if _, err := m.buf.Write(m.init); err != nil {
			return err
		}
	}
	if err := part.Marshal(&m.buf); err != nil {
		return fmt.Errorf("marshal part: %w", err)
	}
	if _, err := m.w.Write(m.buf.Bytes()); err != nil {
		return err
	}
	m.wrote = true
	if m.flushed != nil {
		m.flushed()
	}
	return nil
}

// leadVideo is the id of the first video track, 0 without video.
func leadVideo(init *fmp4.Init) int {
	for _, t := range init.Tracks {
		if t.Codec.IsVideo() {
			return t.ID
		}
	}
	return 0
}

// writeRange writes one fMP4 of the planned range to m: the parts of each
// segment, from the last keyframe before the start, re-timed to the
// answer's start.
func (r *Recorder) writeRange(p *rangePlan, w io.Writer, flushed func()) error {
	r.idx.acquire(p.segs)
	defer r.idx.release(p.segs)
	var m *muxer
	var first *fmp4.Init
	for i, seg := range p.segs {
		err := func() error {
			f, err := os.Open(seg.file)
			if err != nil {
				return err
			}
			defer f.Close()
			h, err := readHeader(f)
			if err != nil {
				return fmt.Errorf("%s: %w", seg.file, err)
			}
			if i == 0 {
				first = h.init
				if m, err = newMuxer(w, h.init, p.to.Sub(p.from)); err != nil {
					return err
				}
				m.flushed = flushed
			} else if trackSig(h.init) != trackSig(first) {
				return errStop
			}
			return r.muxSegment(m, f, h, seg.start.Sub(p.from), p.to.Sub(seg.start))
		}()
		if errors.Is(err, errStop) {
			break
		}
		if err != nil {
			return err
		}
	}
	return m.flush(true)
}

var errStop = errors.New("stop")

// muxSegment feeds the parts of one segment to m. offset is the segment's
// start in answer time (negative for the first one when the range starts
// inside it); until is the range's end in segment time.
func (r *Recorder) muxSegment(m *muxer, f *os.File, h *segmentHeader, offset, until time.Duration) error {
	var parts []partInfo
	if _, err := scanParts(f, h.size, func(p partInfo) bool {
		if len(p.tracks) > 0 {
			start := ticksToDuration(p.tracks[0].start, timescaleOf(h.init, p.tracks[0].id))
			for _, t := range p.tracks[1:] {
				start = min(start, ticksToDuration(t.start, timescaleOf(h.init, t.id)))
			}
			if start >= until {
				return false
			}
		}
		parts = append(parts, p)
		return true
	}); err != nil {
		return err
	}
	// Start with the part holding the last keyframe at or before the
	// range's start (segment time -offset), or the first part that ends
	// after it when there is no video.
	from := 0
	if offset < 0 {
		at := -offset
		lead := leadVideo(h.init)
		for i, p := range parts {
			for _, t := range p.tracks {
				ts := timescaleOf(h.init, t.id)
				switch {
				case lead != 0 && t.id == lead:
					for _, s := range t.syncs {
						if ticksToDuration(s, ts) <= at {
							from = i
						}
					}
				case lead == 0 && ticksToDuration(t.end, ts) <= at:
					from = i + 1
				}
			}
		}
		from = min(from, len(parts))
	}
	for _, pi := range parts[from:] {
		part, err := readPart(f, pi)
		if err != nil {
			return err
		}
		for _, pt := range part.Tracks {
			ts := timescaleOf(h.init, pt.ID)
			if ts == 0 {
				continue
			}
			dts := durationToTicks(offset, ts) + int64(pt.BaseTime)
			if offset < 0 {
				dts = int64(pt.BaseTime) - durationToTicks(-offset, ts)
			}
			for _, s := range pt.Samples {
				m.add(pt.ID, dts, s.Duration, s)
				dts += int64(s.Duration)
			}
		}
		if err := m.flush(false); err != nil {
			return err
		}
	}
	return nil
}
