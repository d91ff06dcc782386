package streaming

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/backoff"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming/source"
)

// path is one named stream slot: its config, its source and its readers.
type path struct {
	m       *Manager
	name    string
	conf    PathConfig
	dynamic bool // created from a regexp or all_others entry, removed when unused
	log     zerolog.Logger

	counters Counters

	mu         sync.Mutex
	state      State
	lastErr    string
	stream     *Stream
	ready      chan struct{} // closed while stream != nil
	leases     int
	run        *sourceRun
	closeTimer *time.Timer
	publisher  *Publication
	closed     bool
	readySince time.Time

	rateMu    sync.Mutex
	rateBytes uint64
	rateAt    time.Time
	rate      float64
}

type sourceRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newPath(m *Manager, name string, conf PathConfig, dynamic bool) *path {
	return &path{
		m:       m,
		name:    name,
		conf:    conf.withDefaults(),
		dynamic: dynamic,
		log:     m.log.With().Str("path", name).Logger(),
		state:   StateIdle,
		ready:   make(chan struct{}),
	}
}

func (p *path) newSource() source.Source {
	switch p.conf.Source {
	case SourceDemo:
		return source.Demo{}
	default:
		return &source.RTSP{URL: p.conf.Source, Transport: p.conf.RTSPTransport, ReadTimeout: p.conf.ReadTimeout,
			Fingerprint: p.conf.SourceFingerprint}
	}
}

// startSourceLocked starts the source goroutine if it is not running.
func (p *path) startSourceLocked() {
	if p.run != nil || p.closed || p.conf.isPublisher() {
		return
	}
	ctx, cancel := context.WithCancel(p.m.ctx)
	run := &sourceRun{cancel: cancel, done: make(chan struct{})}
	p.run = run
	p.state = StateStarting
	p.m.wg.Add(1)
	go p.runSource(ctx, run)
}

// detachLocked stops the source and takes the stream away from the path.
// The caller must call finish() without holding p.mu.
func (p *path) detachLocked(err error) (finish func()) {
	run, stream := p.run, p.stream
	p.run, p.stream = nil, nil
	if stream != nil {
		p.ready = make(chan struct{})
	}
	if p.closeTimer != nil {
		p.closeTimer.Stop()
		p.closeTimer = nil
	}
	p.state = StateIdle
	if run != nil {
		run.cancel()
	}
	return func() {
		if run != nil {
			<-run.done
		}
		if stream != nil {
			stream.close(err)
		}
	}
}

func (p *path) runSource(ctx context.Context, run *sourceRun) {
	defer p.m.wg.Done()
	defer close(run.done)
	src := p.newSource()
	bo := backoff.Backoff{Min: p.m.opts.RetryMin, Max: p.m.opts.RetryMax}
	for {
		sink := &pathSink{p: p, run: run}
		err := src.Run(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("source ended")
		}
		msg := redact.Error(err)
		if !sink.readyAt.IsZero() && time.Since(sink.readyAt) >= p.m.opts.HealthyAfter {
			bo.Reset()
		}
		p.mu.Lock()
		var stale *Stream
		if p.run == run {
			p.state = StateError
			p.lastErr = msg
			stale = p.stream
		}
		p.mu.Unlock()
		if stale != nil {
			// Readers stay for the reconnection, but a reader joining now
			// must not be shown a picture of a camera that is gone.
			stale.resetGOP()
		}
		p.log.Warn().Str("error", msg).Msg("source failed, retrying")
		p.m.events.Event(Event{Type: "path.error", Path: p.name, Detail: msg})

		t := time.NewTimer(bo.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p.counters.Reconnects.Add(1)
		p.mu.Lock()
		if p.run == run && p.state == StateError {
			p.state = StateStarting
		}
		p.mu.Unlock()
	}
}

// pathSink adapts a source run to the path. Only the source goroutine uses it.
type pathSink struct {
	p       *path
	run     *sourceRun
	stream  *Stream
	medias  []*description.Media
	readyAt time.Time
}

// Ready implements source.Sink.
func (s *pathSink) Ready(desc *description.Session) error {
	p := s.p
	p.mu.Lock()
	if p.run != s.run {
		p.mu.Unlock()
		return errors.New("path source stopped")
	}
	var old *Stream
	if p.stream != nil && compatible(p.stream.desc, desc) {
		// Same tracks: readers stay; only the keyframe cache is stale.
		p.stream.resetGOP()
	} else {
		old = p.stream
		p.stream = newStream(desc, &p.counters)
	}
	s.stream = p.stream
	s.medias = desc.Medias
	wasReady := old == nil && p.state == StateReady
	p.state = StateReady
	p.lastErr = ""
	p.readySince = time.Now()
	s.readyAt = p.readySince
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
	p.mu.Unlock()
	if old != nil {
		old.close(ErrTracksChanged)
	}
	if !wasReady {
		p.log.Info().Str("tracks", describeTracks(desc)).Msg("source ready")
		p.m.events.Event(Event{Type: "path.ready", Path: p.name, Detail: describeTracks(desc)})
	}
	return nil
}

// WriteRTP implements source.Sink.
func (s *pathSink) WriteRTP(medi *description.Media, forma format.Format, pkt *rtp.Packet, ntp time.Time) {
	for i, m := range s.medias {
		if m == medi {
			sm := s.stream.desc.Medias[i]
			s.stream.WriteRTP(i, matchFormat(sm, medi, forma), pkt, ntp)
			return
		}
	}
}

// matchFormat maps a format of a source's media to the stream's equivalent.
func matchFormat(streamMedia, srcMedia *description.Media, forma format.Format) format.Format {
	if streamMedia == srcMedia {
		return forma
	}
	for j, f := range srcMedia.Formats {
		if f == forma && j < len(streamMedia.Formats) {
			return streamMedia.Formats[j]
		}
	}
	return forma
}

// compatible reports whether b has the same tracks as a, so readers of a
// can keep reading when the source comes back with b.
func compatible(a, b *description.Session) bool {
	if len(a.Medias) != len(b.Medias) {
		return false
	}
	for i := range a.Medias {
		ma, mb := a.Medias[i], b.Medias[i]
		if ma.Type != mb.Type || len(ma.Formats) != len(mb.Formats) {
			return false
		}
		for j := range ma.Formats {
			fa, fb := ma.Formats[j], mb.Formats[j]
			if fa.PayloadType() != fb.PayloadType() || fa.Codec() != fb.Codec() || fa.ClockRate() != fb.ClockRate() {
				return false
			}
		}
	}
	return true
}

func describeTracks(desc *description.Session) string {
	s := ""
	for i, m := range desc.Medias {
		for _, f := range m.Formats {
			if s != "" || i > 0 {
				s += ", "
			}
			s += f.Codec()
		}
	}
	return s
}

// acquire registers a reader and waits for the stream.
func (p *path) acquire(ctx context.Context) (*Lease, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPathNotFound
	}
	if p.conf.MaxReaders > 0 && p.leases >= p.conf.MaxReaders {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w (maxReaders %d)", ErrTooManyReaders, p.conf.MaxReaders)
	}
	if p.conf.isPublisher() && p.stream == nil {
		p.mu.Unlock()
		return nil, ErrNoStream
	}
	p.leases++
	if p.closeTimer != nil {
		p.closeTimer.Stop()
		p.closeTimer = nil
	}
	if s := p.stream; s != nil {
		p.mu.Unlock()
		return &Lease{p: p, s: s}, nil
	}
	p.startSourceLocked()
	ready := p.ready
	p.mu.Unlock()

	t := time.NewTimer(p.conf.StartTimeout)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		p.mu.Lock()
		last := p.lastErr
		p.mu.Unlock()
		p.release()
		detail := fmt.Sprintf("no stream after %s", p.conf.StartTimeout)
		if last != "" {
			detail += ": " + last
		}
		p.m.events.Event(Event{Type: "path.start_timeout", Path: p.name, Detail: detail})
		if last != "" {
			return nil, fmt.Errorf("%w: %s", ErrStartTimeout, last)
		}
		return nil, ErrStartTimeout
	case <-ctx.Done():
		p.release()
		return nil, ctx.Err()
	}
	p.mu.Lock()
	s := p.stream
	p.mu.Unlock()
	if s == nil {
		p.release()
		return nil, ErrNoStream
	}
	return &Lease{p: p, s: s}, nil
}

// release drops a reader; the last one schedules the on-demand close.
func (p *path) release() {
	p.mu.Lock()
	p.leases--
	if p.leases > 0 || p.closed {
		p.mu.Unlock()
		return
	}
	if !p.conf.onDemand() || p.run == nil {
		p.mu.Unlock()
		p.m.maybeRemove(p)
		return
	}
	if p.stream == nil {
		// The source never came up and nobody waits for it any more.
		finish := p.detachLocked(ErrStreamClosed)
		p.mu.Unlock()
		finish()
		p.m.maybeRemove(p)
		return
	}
	p.closeTimer = time.AfterFunc(p.conf.CloseAfter, p.closeIfUnused)
	p.mu.Unlock()
}

// closeIfUnused runs sourceOnDemandCloseAfter after the last reader left.
func (p *path) closeIfUnused() {
	p.mu.Lock()
	if p.leases > 0 || p.run == nil || p.closed {
		p.mu.Unlock()
		return
	}
	finish := p.detachLocked(ErrStreamClosed)
	p.mu.Unlock()
	p.finishClose(finish, "no readers")
}

// closed_ completes a detach done under p.mu, reports the path closed for
// reason and forgets the path if it is dynamic and unused.
func (p *path) finishClose(finish func(), reason string) {
	finish()
	p.log.Info().Str("reason", reason).Msg("stream closed")
	p.m.events.Event(Event{Type: "path.closed", Path: p.name, Detail: reason})
	p.m.maybeRemove(p)
}

// restart reconnects the source (or drops the publisher).
func (p *path) restart() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if pub := p.publisher; pub != nil {
		p.mu.Unlock()
		pub.kick()
		return
	}
	if p.run == nil {
		p.mu.Unlock()
		return
	}
	// Keep the stream so readers stay if the tracks come back unchanged.
	run := p.run
	p.run = nil
	run.cancel()
	p.mu.Unlock()
	<-run.done
	p.mu.Lock()
	p.startSourceLocked()
	p.mu.Unlock()
	p.counters.Reconnects.Add(1)
}

// shutdown closes the path for good: source stopped, readers and publisher
// disconnected.
func (p *path) shutdown(err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	pub := p.publisher
	p.publisher = nil
	finish := p.detachLocked(err)
	p.mu.Unlock()
	if pub != nil {
		pub.kick()
	}
	finish()
}

// startAlwaysOn starts the source of an always-on path.
func (p *path) startAlwaysOn() {
	if p.conf.onDemand() || p.conf.isPublisher() {
		return
	}
	p.mu.Lock()
	p.startSourceLocked()
	p.mu.Unlock()
}

func (p *path) unused() bool {
	return p.leases == 0 && p.publisher == nil && p.run == nil && p.stream == nil
}

func (p *path) info() PathInfo {
	p.mu.Lock()
	inf := PathInfo{
		Name:      p.name,
		Source:    redact.URL(p.conf.Source),
		State:     p.state,
		OnDemand:  p.conf.onDemand(),
		Readers:   p.leases,
		LastError: p.lastErr,
	}
	if p.stream != nil {
		inf.Tracks = describeTracks(p.stream.desc)
	}
	if p.publisher != nil {
		inf.Publisher = p.publisher.remote
	}
	p.mu.Unlock()
	c := &p.counters
	inf.BytesIn = c.BytesIn.Load()
	inf.BytesOut = c.BytesOut.Load()
	inf.PacketsIn = c.PacketsIn.Load()
	inf.Dropped = c.Dropped.Load()
	inf.Reconnects = c.Reconnects.Load()
	inf.BitrateIn = p.bitrate(inf.BytesIn)
	return inf
}

// bitrate is bits/s over the interval since the previous sample at least
// a second old.
func (p *path) bitrate(bytes uint64) float64 {
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	now := time.Now()
	if p.rateAt.IsZero() {
		p.rateAt, p.rateBytes = now, bytes
		return 0
	}
	if dt := now.Sub(p.rateAt); dt >= time.Second {
		p.rate = float64(bytes-p.rateBytes) * 8 / dt.Seconds()
		p.rateAt, p.rateBytes = now, bytes
	}
	return p.rate
}
