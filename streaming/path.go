package streaming

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/backoff"
	"github.com/camgate/camgate/internal/eventtype"
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
	// entry is the all_others or "~regexp" entry a dynamic path was made
	// from; set before the path is shared and never changed.
	entry string
	// vars are the G1, G2... of a "~regexp" entry's match, for commands;
	// set before the path is shared and never changed.
	vars map[string]string

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
	// init and demand are the runOnInit and runOnDemand commands while
	// they run; demandTimer stops demand runOnDemandCloseAfter after the
	// last reader left.
	init        *sourceRun
	demand      *sourceRun
	demandTimer *time.Timer

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
		lg := p.log
		return &source.RTSP{URL: p.conf.Source, Transport: p.conf.RTSPTransport, ReadTimeout: p.conf.ReadTimeout,
			Fingerprint: p.conf.SourceFingerprint, Log: &lg}
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

// Retry tuning that is not configuration: how long a probe may take, how
// often a failing source is reported again in the log, and the longest run
// of failed probes before a full attempt is made anyway.
const (
	probeTimeout   = 2 * time.Second
	remindEvery    = time.Minute
	fullAttemptMax = 30 * time.Second
)

func (p *path) runSource(ctx context.Context, run *sourceRun) {
	defer p.m.wg.Done()
	defer close(run.done)
	src := p.newSource()
	prober, _ := src.(source.Prober)
	bo := p.backoff()
	var out outage
	for {
		sink := &pathSink{p: p, run: run, since: out.since}
		err := src.Run(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("source ended")
		}
		msg := redact.Error(err)
		if !sink.readyAt.IsZero() {
			out = outage{} // it played: this failure starts a new outage
			if time.Since(sink.readyAt) >= p.m.opts.HealthyAfter {
				bo.Reset()
			}
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
		wait := bo.Next()
		p.reportFailure(&out, msg, wait)

		if !p.waitRetry(ctx, prober, wait, &bo) {
			return
		}
		p.counters.Reconnects.Add(1)
		p.mu.Lock()
		if p.run == run && p.state == StateError {
			p.state = StateStarting
		}
		p.mu.Unlock()
	}
}

// backoff is the path's retry schedule: RetryMin doubling up to the path's
// RetryMax (sourceRetryMax), each wait drawn from its upper half.
func (p *path) backoff() backoff.Backoff {
	hi := p.conf.RetryMax
	if hi <= 0 {
		hi = p.m.opts.RetryMax
	}
	return backoff.Backoff{Min: min(p.m.opts.RetryMin, hi), Max: hi}
}

// outage is the bookkeeping of one run of failures, for a quiet log: the
// first failure is logged and raised as path.error, the following ones only
// at debug level, with a reminder every remindEvery.
type outage struct {
	since    time.Time // first failure; zero while the source plays
	attempts int
	reminded time.Time // last warning logged
}

func (p *path) reportFailure(o *outage, msg string, wait time.Duration) {
	now := time.Now()
	o.attempts++
	switch {
	case o.since.IsZero():
		o.since, o.reminded = now, now
		p.log.Warn().Str("error", msg).Dur("retryIn", wait).Msg("source failed, retrying")
		p.m.events.Event(Event{Type: eventtype.PathError, Path: p.name, Detail: msg})
	case now.Sub(o.reminded) >= remindEvery:
		o.reminded = now
		p.log.Warn().Str("error", msg).Int("attempts", o.attempts).Dur("failingFor", now.Sub(o.since)).
			Msg("source still failing, retrying")
	default:
		p.log.Debug().Str("error", msg).Int("attempts", o.attempts).Dur("retryIn", wait).Msg("source failed again")
	}
}

// waitRetry waits before the next full attempt and reports false when ctx
// ended. Without a prober it waits out one backoff step. With one, it
// probes about every ProbeInterval (jittered, so that many paths do not
// probe in step) and:
//   - attempts at once when the peer, having refused or not answered,
//     accepts again: the camera is back (the backoff starts over, a camera
//     that boots is retried quickly);
//   - attempts when the step is over and the last probe succeeded (the peer
//     answers but the stream failed: a normal backoff step);
//   - keeps probing past the step while the peer does not answer, with a
//     full attempt at least every fullAttemptMax in case the probe is wrong
//     (a link slower than probeTimeout).
func (p *path) waitRetry(ctx context.Context, prober source.Prober, wait time.Duration, bo *backoff.Backoff) bool {
	if prober == nil {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	start := time.Now()
	stepEnd := start.Add(wait)
	every := p.m.opts.ProbeInterval
	// The first probe comes soon, spread over a quarter interval. Until a
	// probe says otherwise the peer counts as answering: the step alone
	// decides.
	nextProbe := start.Add(jitter(every / 4))
	answered, down := true, false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		now := time.Now()
		if !now.Before(nextProbe) {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := prober.Probe(pctx)
			cancel()
			if ctx.Err() != nil {
				return false
			}
			answered = err == nil
			switch {
			case answered && down:
				p.log.Info().Dur("after", time.Since(start)).Msg("camera answers again, reconnecting")
				bo.Reset()
				return true
			case !answered && !down:
				down = true
				p.log.Debug().Str("error", redact.Error(err)).Msg("camera does not answer; probing until it does")
			}
			now = time.Now()
			nextProbe = now.Add(every*3/4 + jitter(every/2))
		}
		if !now.Before(stepEnd) && (answered || now.Sub(start) >= fullAttemptMax) {
			return true
		}
		wake := nextProbe
		if answered && stepEnd.Before(wake) {
			wake = stepEnd
		}
		t.Reset(max(time.Until(wake), 0))
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// jitter is a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// pathSink adapts a source run to the path. Only the source goroutine uses it.
type pathSink struct {
	p       *path
	run     *sourceRun
	stream  *Stream
	medias  []*description.Media
	readyAt time.Time
	since   time.Time // start of the outage this attempt ends, if any
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
		ev := p.log.Info().Str("tracks", describeTracks(desc))
		if !s.since.IsZero() {
			ev = ev.Dur("downFor", s.readyAt.Sub(s.since))
		}
		ev.Msg("source ready")
		p.m.events.Event(Event{Type: eventtype.PathReady, Path: p.name, Detail: describeTracks(desc)})
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
	if p.conf.isPublisher() && p.stream == nil && (!p.conf.onDemandCommand() || p.m.opts.Commands == nil) {
		p.mu.Unlock()
		return nil, ErrNoStream
	}
	p.leases++
	if p.closeTimer != nil {
		p.closeTimer.Stop()
		p.closeTimer = nil
	}
	if p.demandTimer != nil {
		p.demandTimer.Stop()
		p.demandTimer = nil
	}
	if s := p.stream; s != nil {
		p.mu.Unlock()
		return &Lease{p: p, s: s}, nil
	}
	timeout := p.conf.StartTimeout
	if p.conf.isPublisher() {
		// runOnDemand: the reader waits for the command's publisher.
		timeout = p.conf.RunOnDemandStartTimeout
		p.startDemandLocked()
	} else {
		p.startSourceLocked()
	}
	ready := p.ready
	p.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		p.mu.Lock()
		last := p.lastErr
		p.mu.Unlock()
		p.release()
		p.stopDemandIfIdle(fmt.Sprintf("it did not publish within %s", timeout))
		detail := fmt.Sprintf("no stream after %s", timeout)
		if last != "" {
			detail += ": " + last
		}
		p.m.events.Event(Event{Type: eventtype.PathStartTimeout, Path: p.name, Detail: detail})
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
	if p.demand != nil {
		// As MediaMTX: the command runs on for runOnDemandCloseAfter, also
		// when its publisher is gone (it may be restarting), so a reader
		// that comes back soon finds it.
		if p.demandTimer != nil {
			p.demandTimer.Stop()
		}
		p.demandTimer = time.AfterFunc(p.conf.RunOnDemandCloseAfter, func() { p.stopDemandIfIdle("no readers") })
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
	p.m.events.Event(Event{Type: eventtype.PathClosed, Path: p.name, Detail: reason})
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
	cmds := []*sourceRun{p.init, p.demand}
	p.init, p.demand = nil, nil
	if p.demandTimer != nil {
		p.demandTimer.Stop()
		p.demandTimer = nil
	}
	p.mu.Unlock()
	for _, c := range cmds {
		if c != nil {
			c.cancel()
		}
	}
	if pub != nil {
		pub.kick()
	}
	finish()
	for _, c := range cmds {
		if c != nil {
			<-c.done
		}
	}
}

// startAlwaysOn starts the source of an always-on path and the path's
// runOnInit command.
func (p *path) startAlwaysOn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conf.RunOnInit != "" && p.init == nil && !p.closed && !p.dynamic {
		p.init = p.startCommandLocked(Command{Hook: HookRunOnInit, Path: p.name, Line: p.conf.RunOnInit, Restart: p.conf.RunOnInitRestart, Vars: p.vars})
	}
	if p.conf.onDemand() || p.conf.isPublisher() {
		return
	}
	p.startSourceLocked()
}

func (p *path) unused() bool {
	return p.leases == 0 && p.publisher == nil && p.run == nil && p.stream == nil && p.demand == nil && p.init == nil
}

// startDemandLocked starts the runOnDemand command if it is not running.
func (p *path) startDemandLocked() {
	if p.demand != nil || p.closed {
		return
	}
	vars := map[string]string{"MTX_QUERY": ""}
	for k, v := range p.vars {
		vars[k] = v
	}
	p.demand = p.startCommandLocked(Command{Hook: HookRunOnDemand, Path: p.name, Line: p.conf.RunOnDemand, Restart: p.conf.RunOnDemandRestart, Vars: vars})
	if p.demand != nil && p.stream == nil {
		p.state = StateStarting
	}
}

// startCommandLocked runs c on the manager's CommandRunner until the
// returned run is cancelled or, without Restart, the command exits.
func (p *path) startCommandLocked(c Command) *sourceRun {
	runner := p.m.opts.Commands
	if runner == nil {
		p.log.Warn().Str("hook", c.Hook).Msg("command not run: this agent runs no path commands")
		return nil
	}
	ctx, cancel := context.WithCancel(p.m.ctx)
	run := &sourceRun{cancel: cancel, done: make(chan struct{})}
	p.m.wg.Add(1)
	go func() {
		defer p.m.wg.Done()
		defer close(run.done)
		err := runner.Run(ctx, c)
		if ctx.Err() != nil {
			return
		}
		// The command ended for good (it exited and is not restarted).
		p.mu.Lock()
		switch {
		case p.init == run:
			p.init = nil
		case p.demand == run:
			p.dropDemandLocked()
		}
		if err != nil {
			p.lastErr = c.Hook + ": " + redact.Error(err)
		}
		p.mu.Unlock()
		cancel()
		p.m.maybeRemove(p)
	}()
	return run
}

// stopDemandIfIdle stops the runOnDemand command when no reader holds the
// path (runOnDemandCloseAfter after the last one left, or when the first
// one gave up waiting).
func (p *path) stopDemandIfIdle(reason string) {
	p.mu.Lock()
	d := p.demand
	if d == nil || p.leases > 0 || p.closed {
		p.mu.Unlock()
		return
	}
	p.dropDemandLocked()
	p.mu.Unlock()
	d.cancel()
	<-d.done
	p.log.Info().Str("reason", reason).Msg("runOnDemand command stopped")
	p.m.maybeRemove(p)
}

// dropDemandLocked forgets the runOnDemand command (whoever calls it
// stops the command, or it ended) and its close timer; a path that waited
// for the command's publisher is idle again. p.mu is held.
func (p *path) dropDemandLocked() {
	p.demand = nil
	if p.demandTimer != nil {
		p.demandTimer.Stop()
		p.demandTimer = nil
	}
	if p.stream == nil && p.state == StateStarting {
		p.state = StateIdle
	}
}

func (p *path) info() PathInfo {
	p.mu.Lock()
	inf := PathInfo{
		Name:      p.name,
		Source:    redact.URL(p.conf.Source),
		State:     p.state,
		OnDemand:  p.conf.onDemand() || p.conf.onDemandCommand(),
		Readers:   p.leases,
		LastError: p.lastErr,
		Entry:     p.entry,
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
// a second old, rounded to whole bits/s.
func (p *path) bitrate(bytes uint64) float64 { return p.bitrateAt(bytes, time.Now()) }

func (p *path) bitrateAt(bytes uint64, now time.Time) float64 {
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	if p.rateAt.IsZero() {
		p.rateAt, p.rateBytes = now, bytes
		return 0
	}
	if dt := now.Sub(p.rateAt); dt >= time.Second {
		p.rate = math.Round(float64(bytes-p.rateBytes) * 8 / dt.Seconds())
		p.rateAt, p.rateBytes = now, bytes
	}
	return p.rate
}
