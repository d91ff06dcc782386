package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
)

// Limits of the timeline: a track whose timestamps run away from the wall
// clock by more than maxJump (a camera that reset its clock) starts a new
// recording; segment names are moved back to the wall clock when their
// times drift from it by more than maxDrift (cameras' clocks drift by tens
// of ppm: seconds a day).
const (
	maxJump  = 10 * time.Second
	maxDrift = 2 * time.Second
)

// writer records one stream of a path. It is a reader of the stream: the
// stream's goroutine only queues, and run writes the segments.
type writer struct {
	rec  *Recorder
	name string
	cfg  PathConfig
	pat  *pattern
	log  zerolog.Logger
	strm *streaming.Stream
	q    *streaming.Queue

	tracks []*wtrack // by media index; nil for media not recorded
	order  []*wtrack // recorded tracks by id
	lead   *wtrack   // segments start at its sync samples: the first video track, else the first track

	epoch  time.Time     // wall time of the timeline's zero; zero before the first sample
	corr   time.Duration // added to timeline times to name segments (clock drift)
	seg    *openSegment
	rotate bool // start a new segment at the lead's next sync sample
	buf    seekablebuffer.Buffer

	end    context.CancelFunc // ends run once the queue is empty; set before the reader is added
	endMu  sync.Mutex
	endErr error
}

// wtrack is one recorded track.
type wtrack struct {
	id     int
	format format.Format
	clock  uint32
	ct     codecTrack
	video  bool

	tsSeen bool
	lastTS uint32
	pts    int64 // unwrapped RTP timestamp
	ssrc   uint32

	started bool
	base    int64 // dts of the first sample
	offset  int64 // timeline ticks of the first sample
	lastDur int64

	pending *tsample
	samples []*fmp4.Sample // finished samples of the current part
	first   int64          // timeline ticks of samples[0]
}

// tsample is a sample placed on the timeline (ticks since the epoch).
type tsample struct {
	ticks int64
	s     sample
}

// openSegment is the segment being written.
type openSegment struct {
	start     time.Duration // timeline time of its start
	wall      time.Time
	init      []byte
	sig       string
	f         *os.File
	durs      durations
	idx       *segment
	seq       uint32
	size      int64
	end       time.Duration // timeline time of the end of the last sample written
	partStart time.Duration
	partEnd   time.Duration
	hasPart   bool
	broken    bool // a write failed: no more parts go into this file
}

// newWriter plans the tracks of strm. Media it cannot record are reported
// with one event; ErrUnsupportedTracks when none is left.
func newWriter(rec *Recorder, name string, cfg PathConfig, strm *streaming.Stream) (*writer, error) {
	pat, err := parsePattern(cfg.Pattern)
	if err != nil {
		return nil, err
	}
	w := &writer{
		rec: rec, name: name, cfg: cfg, pat: pat.under(rec.base),
		log:  rec.log.With().Str("path", name).Logger(),
		strm: strm, q: streaming.NewQueue(rec.o.QueueSize),
	}
	desc := strm.Desc()
	w.tracks = make([]*wtrack, len(desc.Medias))
	var skipped []string
	for i, m := range desc.Medias {
		var why error
		for _, f := range m.Formats {
			ct, err := newCodecTrack(f)
			if err != nil {
				why = err
				continue
			}
			t := &wtrack{id: len(w.order) + 1, format: f, clock: uint32(f.ClockRate()), ct: ct, video: m.Type == description.MediaTypeVideo}
			if t.clock == 0 {
				why = fmt.Errorf("%s has no clock rate", f.Codec())
				continue
			}
			w.tracks[i] = t
			w.order = append(w.order, t)
			break
		}
		if w.tracks[i] == nil {
			msg := fmt.Sprintf("track %d (%s)", i+1, m.Type)
			if why != nil {
				msg += ": " + why.Error()
			}
			skipped = append(skipped, msg)
		}
	}
	if len(skipped) > 0 {
		rec.report(name, EventUnsupported, "not recorded: "+strings.Join(skipped, "; "))
	}
	if len(w.order) == 0 {
		return nil, ErrUnsupportedTracks
	}
	w.lead = w.order[0]
	for _, t := range w.order {
		if t.video {
			w.lead = t
			break
		}
	}
	return w, nil
}

// WritePacket implements streaming.Reader.
func (w *writer) WritePacket(p *streaming.Packet) bool {
	t := w.tracks[p.MediaIndex]
	if t == nil || p.Format != t.format {
		return true
	}
	return w.q.Push(p)
}

// Close implements streaming.Reader: run writes what is queued, then ends.
func (w *writer) Close(err error) {
	if err == nil {
		err = streaming.ErrStreamClosed
	}
	w.endMu.Lock()
	if w.endErr == nil {
		w.endErr = err
	}
	w.endMu.Unlock()
	w.end()
}

// run writes until the stream ends or ctx is done; what was queued is
// written and the open segment finished either way. It returns why the
// stream ended (ErrStreamClosed, ErrTracksChanged) or ctx.Err().
func (w *writer) run(ctx context.Context) error {
	popCtx, end := context.WithCancel(ctx)
	defer end()
	w.end = end
	w.strm.AddReader(w)
	defer func() {
		w.strm.RemoveReader(w)
		w.q.Close()
		w.finishSegment()
	}()
	buf := make([]*streaming.Packet, 64)
	for {
		// Once ended, Pop still hands out what is queued, then fails.
		n, err := w.q.Pop(popCtx, buf)
		for i, p := range buf[:n] {
			w.handle(p)
			p.Release()
			buf[i] = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.endMu.Lock()
			defer w.endMu.Unlock()
			if w.endErr != nil {
				return w.endErr
			}
			return err
		}
	}
}

// handle takes one packet of a recorded track.
func (w *writer) handle(p *streaming.Packet) {
	t := w.tracks[p.MediaIndex]
	if t.tsSeen && p.RTP.SSRC != t.ssrc {
		w.restart("the source changed its SSRC (reconnected)")
	}
	if !t.tsSeen {
		t.tsSeen, t.ssrc, t.lastTS, t.pts = true, p.RTP.SSRC, p.RTP.Timestamp, int64(p.RTP.Timestamp)
	} else {
		t.pts += int64(int32(p.RTP.Timestamp - t.lastTS))
		t.lastTS = p.RTP.Timestamp
	}
	// The depacketizers keep payloads of earlier packets (fragments, the
	// NAL units of an access unit) while the pooled packet is reused.
	pkt := *p.RTP
	pkt.Payload = bytes.Clone(p.RTP.Payload)
	samples, err := t.ct.decode(&pkt, t.pts)
	if err != nil {
		if !isDecodeWait(err) {
			w.log.Debug().Err(err).Int("track", t.id).Msg("packet not decoded")
		}
		return
	}
	if t.ct.changed() {
		w.rotate = true
	}
	for _, s := range samples {
		w.add(t, s, p.NTP)
	}
}

// restart ends the recording of the current timeline: the next sample of
// the lead that can start one begins a new segment with a new epoch.
func (w *writer) restart(why string) {
	w.log.Info().Str("reason", why).Msg("recording restarts")
	w.finishSegment()
	w.epoch, w.corr = time.Time{}, 0
	for _, t := range w.order {
		ct, err := newCodecTrack(t.format)
		if err == nil {
			t.ct = ct
		}
		t.tsSeen, t.started, t.pending, t.samples, t.lastDur = false, false, nil, nil, 0
	}
}

// timeOf converts a track's timeline ticks to a timeline time.
func (t *wtrack) timeOf(ticks int64) time.Duration { return ticksToDuration(ticks, t.clock) }

// add places one sample on the timeline and writes what it completes.
func (w *writer) add(t *wtrack, s sample, ntp time.Time) {
	if w.epoch.IsZero() {
		if t != w.lead || !s.sync || !w.paramsKnown() {
			return // a recording starts with the lead's keyframe
		}
		w.epoch = ntp
	}
	if !t.started {
		if t.video && !s.sync {
			return
		}
		t.started, t.base = true, s.dts
		t.offset = durationToTicks(ntp.Sub(w.epoch), t.clock)
	}
	ticks := t.offset + s.dts - t.base
	at := t.timeOf(ticks)
	if d := at - ntp.Sub(w.epoch); d > maxJump || d < -maxJump {
		w.restart(fmt.Sprintf("track %d timestamps jumped by %s", t.id, d.Round(time.Millisecond)))
		w.add(t, s, ntp)
		return
	}
	if t == w.lead && s.sync && w.paramsKnown() {
		switch {
		case w.seg == nil:
			w.openSegment(at, ntp)
		case w.rotate || at-w.seg.start >= w.cfg.SegmentDuration:
			w.finishPending(t, ticks) // the lead's last sample ends here
			w.finishSegmentAt(at)
			w.openSegment(at, ntp)
		}
	}
	if w.seg == nil {
		return
	}
	// A sample from before the segment (audio arriving after the
	// keyframe that started it) is moved to its start.
	if st := durationToTicks(w.seg.start, t.clock); ticks < st {
		ticks = st
	}
	if t.pending != nil {
		dur := ticks - t.pending.ticks
		if dur < 0 {
			dur = 0
		}
		w.finish(t, dur)
	}
	t.pending = &tsample{ticks: ticks, s: s}
	w.maybeFlush()
}

// paramsKnown reports whether every video track can describe itself in an
// init (its parameter sets were seen).
func (w *writer) paramsKnown() bool {
	for _, t := range w.order {
		if t.ct.codec() == nil {
			return false
		}
	}
	return true
}

// finishPending ends t's pending sample at ticks.
func (w *writer) finishPending(t *wtrack, ticks int64) {
	if t.pending != nil {
		w.finish(t, max(ticks-t.pending.ticks, 0))
	}
}

// finish appends t's pending sample, lasting dur ticks, to the part.
// An audio frame followed by a gap (lost packets) lasts what the codec
// says, and the part ends after it: the next part's base time keeps the
// gap.
func (w *writer) finish(t *wtrack, dur int64) {
	p := t.pending
	t.pending = nil
	gap := false
	if p.s.dur > 0 && (dur <= 0 || dur > 4*p.s.dur) {
		dur, gap = p.s.dur, true
	}
	if dur > 0 {
		t.lastDur = dur
	}
	if len(t.samples) == 0 {
		t.first = p.ticks
	}
	t.samples = append(t.samples, &fmp4.Sample{
		Duration:        uint32(min(dur, 1<<32-1)),
		PTSOffset:       p.s.ptsOffset,
		IsNonSyncSample: !p.s.sync,
		Payload:         p.s.payload,
	})
	start, end := t.timeOf(p.ticks), t.timeOf(p.ticks+dur)
	s := w.seg
	if !s.hasPart || start < s.partStart {
		s.partStart = start
	}
	s.hasPart = true
	s.partEnd = max(s.partEnd, end)
	if gap {
		w.flushPart()
	}
}

// maybeFlush writes the part once it is long enough.
func (w *writer) maybeFlush() {
	if w.seg != nil && w.seg.hasPart && w.seg.partEnd-w.seg.partStart >= w.cfg.PartDuration {
		w.flushPart()
	}
}

// openSegment starts a segment at timeline time at; its file is created
// with its first part.
func (w *writer) openSegment(at time.Duration, ntp time.Time) {
	wall := w.epoch.Add(at + w.corr)
	if d := ntp.Sub(wall); d > maxDrift || d < -maxDrift {
		w.corr += d
		wall = ntp
		w.log.Info().Dur("drift", d).Msg("segment times follow the wall clock again")
	}
	tracks := make([]*fmp4.InitTrack, len(w.order))
	for i, t := range w.order {
		tracks[i] = &fmp4.InitTrack{ID: t.id, TimeScale: t.clock, Codec: t.ct.codec()}
	}
	init, durs, err := marshalInit(tracks)
	if err != nil {
		w.rec.report(w.name, EventError, "segment init: "+err.Error())
		return
	}
	w.rotate = false
	w.seg = &openSegment{
		start: at, wall: wall.Truncate(time.Microsecond), init: init, durs: durs,
		sig: trackSig(&fmp4.Init{Tracks: tracks}), end: at,
	}
}

// finishSegmentAt ends the segment at timeline time at: pending samples
// that start before it are finished there.
func (w *writer) finishSegmentAt(at time.Duration) {
	for _, t := range w.order {
		if t.pending == nil {
			continue
		}
		stop := durationToTicks(at, t.clock)
		if t.pending.ticks >= stop {
			continue // it belongs to the next segment
		}
		dur := t.pending.s.dur
		if dur == 0 {
			dur = stop - t.pending.ticks
		}
		w.finish(t, dur)
	}
	w.closeSegment()
}

// finishSegment ends the segment with every pending sample.
func (w *writer) finishSegment() {
	if w.seg == nil {
		return
	}
	for _, t := range w.order {
		if t.pending != nil {
			dur := t.pending.s.dur
			if dur == 0 {
				dur = t.lastDur
			}
			w.finish(t, dur)
		}
	}
	w.closeSegment()
}

// closeSegment writes the last part and the segment's duration.
func (w *writer) closeSegment() {
	s := w.seg
	if s == nil {
		return
	}
	w.flushPart()
	w.seg = nil
	for _, t := range w.order {
		t.samples = t.samples[:0]
	}
	if s.f == nil {
		return
	}
	dur := s.end - s.start
	err := s.durs.write(s.f, dur)
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.rec.report(w.name, EventError, "close segment: "+err.Error())
	}
	w.rec.idx.set(s.idx, s.size, dur, false)
	w.log.Debug().Str("file", s.idx.file).Dur("duration", dur).Int64("bytes", s.size).Msg("segment closed")
}

// flushPart writes the part: one write and one sync, after making room.
func (w *writer) flushPart() {
	s := w.seg
	if s == nil || !s.hasPart {
		return
	}
	part := fmp4.Part{SequenceNumber: s.seq}
	var end time.Duration
	for _, t := range w.order {
		if len(t.samples) == 0 {
			continue
		}
		base := t.first - durationToTicks(s.start, t.clock)
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: uint64(max(base, 0)), Samples: t.samples})
		last := t.first
		for _, x := range t.samples {
			last += int64(x.Duration)
		}
		end = max(end, t.timeOf(last))
	}
	s.hasPart, s.partStart, s.partEnd = false, 0, 0
	defer func() {
		for _, t := range w.order {
			clear(t.samples)
			t.samples = t.samples[:0]
		}
	}()
	w.buf.Reset()
	if s.f == nil {
		if _, err := w.buf.Write(s.init); err != nil {
			return
		}
	}
	if err := part.Marshal(&w.buf); err != nil {
		w.rec.report(w.name, EventError, "marshal part: "+err.Error())
		return
	}
	data := w.buf.Bytes()
	if s.broken {
		return
	}
	file := s.file(w)
	rotate, err := w.rec.makeRoom(w.name, w.cfg, file, w.pat.root(), int64(len(data)))
	if rotate {
		w.rotate = true
	}
	if err != nil {
		w.rec.report(w.name, EventError, err.Error())
		return
	}
	if s.f == nil {
		if err := w.create(s, file); err != nil {
			w.rec.report(w.name, EventError, "create segment: "+err.Error())
			return
		}
	}
	if _, err := s.f.Write(data); err != nil {
		w.rec.report(w.name, EventError, "write part: "+err.Error())
		// What was written before stays playable: the file is cut back
		// to it, and the next keyframe starts a new segment.
		_ = s.f.Truncate(s.size)
		s.broken, w.rotate = true, true
		return
	}
	if err := s.f.Sync(); err != nil {
		w.rec.report(w.name, EventError, "sync part: "+err.Error())
	}
	s.seq++
	s.size += int64(len(data))
	s.end = max(s.end, end)
	w.rec.idx.set(s.idx, s.size, s.end-s.start, true)
	w.rec.recorded(w.name, int64(len(data)))
}

// file is the segment's file name.
func (s *openSegment) file(w *writer) string {
	if s.idx != nil {
		return s.idx.file
	}
	return w.pat.file(w.name, s.wall)
}

// create makes the segment's file (and its directories) and indexes it,
// first: a rescan must never take a file being created for a crashed one.
func (w *writer) create(s *openSegment, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	for try := 0; ; try++ {
		s.idx = &segment{name: w.name, file: file, root: w.pat.root(), start: s.wall, sig: s.sig, open: true}
		w.rec.idx.add(s.idx)
		f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			s.f = f
			break
		}
		w.rec.idx.remove(s.idx)
		s.idx = nil
		if !errors.Is(err, os.ErrExist) || try == 3 {
			return err
		}
		// The same microsecond as an existing file (the clock was set
		// back): this segment's name moves on by a microsecond.
		s.wall = s.wall.Add(time.Microsecond)
		file = w.pat.file(w.name, s.wall)
	}
	syncDir(filepath.Dir(file))
	w.log.Debug().Str("file", file).Msg("segment created")
	return nil
}

// syncDir makes a new directory entry durable where the platform allows
// it; where it does not (Windows) the file's own sync has to do.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

var _ streaming.Reader = (*writer)(nil)
