package hls

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
)

// muxer is one path's LL-HLS muxer and a reader of the path's stream. Its
// run goroutine owns it: it acquires the path, feeds gohlslib and tears
// everything down; requests only read it once ready is closed.
type muxer struct {
	srv  *Server
	name string
	log  zerolog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed when hm is set or err is
	done   chan struct{}

	hm  *gohlslib.Muxer // set before ready is closed
	err error           // why the muxer could not start; set before ready is closed

	q       *streaming.Queue
	tracks  []*track // by position; trackOf maps media indexes
	trackOf map[int]*track

	gate    sync.Mutex
	closing bool // set once hm is being closed: requests are refused

	lastRequest atomic.Int64 // unix nanoseconds of the last request's start or end
	lastStart   atomic.Int64 // unix nanoseconds of the last request's start
	active      atomic.Int32 // requests being answered
	stopMu      sync.Mutex
	cause       error
}

func newMuxer(s *Server, parent context.Context, name string) *muxer {
	ctx, cancel := context.WithCancel(parent)
	m := &muxer{
		srv: s, name: name, ctx: ctx, cancel: cancel,
		log:   s.log.With().Str("path", name).Logger(),
		ready: make(chan struct{}), done: make(chan struct{}),
		q: streaming.NewQueue(s.o.WriteQueueSize),
	}
	m.touch()
	return m
}

// touch records a request: the muxer stays while clients ask.
func (m *muxer) touch() { m.lastRequest.Store(time.Now().UnixNano()) }

// idleFor is how long the muxer has been without clients. A request in
// progress (an LL-HLS request blocks until its part exists) counts as a
// client, but only up to the write timeout after the latest start: a
// request waiting for a stalled stream must not keep the path for ever.
func (m *muxer) idleFor(now time.Time) time.Duration {
	idle := now.Sub(time.Unix(0, m.lastRequest.Load()))
	if m.active.Load() > 0 {
		if busy := now.Sub(time.Unix(0, m.lastStart.Load())) - m.srv.o.WriteTimeout; busy < idle {
			idle = max(busy, 0)
		}
	}
	return idle
}

// WritePacket implements streaming.Reader: it only queues, never blocks.
func (m *muxer) WritePacket(p *streaming.Packet) bool {
	if t := m.trackOf[p.MediaIndex]; t == nil || p.Format != t.format {
		return true // not a track the muxer carries
	}
	return m.q.Push(p)
}

// Close implements streaming.Reader: the stream ended.
func (m *muxer) Close(err error) {
	if err == nil {
		err = streaming.ErrStreamClosed
	}
	m.stop(err)
}

// stop asks the muxer to end; it does not wait.
func (m *muxer) stop(cause error) {
	m.stopMu.Lock()
	if m.cause == nil {
		m.cause = cause
	}
	m.stopMu.Unlock()
	m.cancel()
}

func (m *muxer) stopCause() error {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	return m.cause
}

// run acquires the path, muxes until the muxer stops, and releases all.
func (m *muxer) run() {
	defer close(m.done)
	defer m.srv.remove(m)
	start := time.Now()
	lease, err := m.srv.o.Paths.Acquire(m.ctx, m.name, streaming.ReaderRequest{Protocol: "hls"})
	if err != nil {
		m.fail(err)
		return
	}
	defer lease.Release()
	strm := lease.Stream()
	tracks, err := newTracks(strm.Desc())
	if err != nil {
		m.fail(err)
		return
	}
	m.tracks = tracks
	m.trackOf = map[int]*track{}
	hts := make([]*gohlslib.Track, len(tracks))
	for i, t := range tracks {
		m.trackOf[t.media] = t
		hts[i] = t.hls
	}
	var encodeErrors atomic.Uint64
	hm := &gohlslib.Muxer{
		Variant:            gohlslib.MuxerVariantLowLatency,
		Tracks:             hts,
		SegmentCount:       m.srv.o.SegmentCount,
		SegmentMinDuration: m.srv.o.SegmentMinDuration,
		PartMinDuration:    m.srv.o.PartMinDuration,
		SegmentMaxSize:     m.srv.o.SegmentMaxSize,
		OnEncodeError: func(err error) {
			if encodeErrors.Add(1) <= 5 {
				m.log.Debug().Err(err).Msg("hls muxer")
			}
		},
	}
	if err := hm.Start(); err != nil {
		m.fail(err)
		return
	}
	m.hm = hm
	close(m.ready)
	m.log.Info().Str("tracks", codecList(tracks)).Dur("setup", time.Since(start)).Msg("hls muxer started")

	strm.AddReader(m)
	idle := m.watchIdle()
	m.feed()
	idle.Stop()
	strm.RemoveReader(m)
	m.q.Close()
	m.gate.Lock()
	m.closing = true // no request gets into hm from now on
	m.gate.Unlock()
	c := closer{hm: hm, lead: tracks[0], inside: m.active.Load,
		nudge: m.srv.o.SegmentMinDuration + time.Second, timeout: 2 * time.Second}
	c.close() // wakes every request waiting for a part
	ev := m.log.Info()
	if c := m.stopCause(); c != nil && !errors.Is(c, ErrIdle) && !errors.Is(c, context.Canceled) {
		ev = m.log.Warn().Str("reason", c.Error())
	} else if c != nil {
		ev = ev.Str("reason", c.Error())
	}
	if n := m.q.Dropped(); n > 0 {
		ev = ev.Uint64("dropped", n)
	}
	if n := encodeErrors.Load(); n > 0 {
		ev = ev.Uint64("encodeErrors", n)
	}
	ev.Dur("lived", time.Since(start)).Msg("hls muxer closed")
}

// fail ends a muxer that could not start: waiting requests get err.
func (m *muxer) fail(err error) {
	m.err = err
	close(m.ready)
	m.log.Info().Err(err).Msg("hls muxer not started")
}

// watchIdle stops the muxer once no request came for MuxerCloseAfter.
func (m *muxer) watchIdle() *time.Timer {
	after := m.srv.o.MuxerCloseAfter
	var mu sync.Mutex
	var t *time.Timer
	check := func() {
		idle := m.idleFor(time.Now())
		if idle >= after {
			m.stop(ErrIdle)
			return
		}
		mu.Lock()
		t.Reset(after - idle)
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(after, check)
	mu.Unlock()
	return t
}

// feed moves packets from the queue into the muxer until the muxer stops.
func (m *muxer) feed() {
	var tl timeline
	buf := make([]*streaming.Packet, 64)
	for {
		n, err := m.q.Pop(m.ctx, buf)
		if err != nil {
			m.stop(err)
			return
		}
		for i, p := range buf[:n] {
			if err == nil {
				err = m.write(&tl, p)
			}
			p.Release()
			buf[i] = nil
		}
		if err != nil {
			m.stop(err)
			return
		}
	}
}

// write depacketizes one packet and muxes what it completes. Units the
// muxer refuses (no parameter sets yet, a broken access unit) are
// counted by OnEncodeError and skipped; only a clock jump ends the muxer.
func (m *muxer) write(tl *timeline, p *streaming.Packet) error {
	t := m.trackOf[p.MediaIndex]
	units, ts, err := t.decode(copyPacket(p.RTP))
	if err != nil {
		m.hm.OnEncodeError(err)
		return nil
	}
	if len(units) == 0 {
		return nil
	}
	pts, ok := tl.place(t, ts, p.NTP)
	if !ok {
		return ErrDiscontinuity
	}
	if err := t.write(m.hm, p.NTP, pts, units); err != nil {
		m.hm.OnEncodeError(err)
	}
	t.last = pts
	return nil
}

// serve hands a request to gohlslib. A file it does not know (a muxer of
// an earlier start, a part long gone) is answered 404 so that the player
// loads index.m3u8 again; gohlslib itself would answer an empty 200.
func (m *muxer) serve(w http.ResponseWriter, r *http.Request) {
	m.lastStart.Store(time.Now().UnixNano())
	m.touch()
	m.gate.Lock()
	if m.closing {
		m.gate.Unlock()
		httpError(w, http.StatusNotFound, ErrNoMuxer.Error())
		return
	}
	m.active.Add(1)
	m.gate.Unlock()
	defer func() {
		m.active.Add(-1)
		m.touch()
	}()
	tw := &trackingWriter{ResponseWriter: w}
	m.hm.Handle(tw, r)
	if !tw.wrote {
		httpError(w, http.StatusNotFound, ErrNoMuxer.Error())
	}
}

func codecList(ts []*track) string {
	s := ""
	for _, t := range ts {
		if s != "" {
			s += ", "
		}
		s += t.format.Codec()
	}
	return s
}

// trackingWriter tells whether a handler answered at all.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
