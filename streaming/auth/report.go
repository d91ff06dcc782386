package auth

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/eventtype"
)

// Denial reports requests refused from one source: the first refusal at
// once, then, every interval while refusals go on, how many there were
// since the previous report. The counts of all reports add up to every
// refusal, exactly.
type Denial struct {
	// Kind is the event type: eventtype.ReaderDenied, PublisherDenied or
	// APIDenied.
	Kind string
	// IP is the source; the zero Addr stands for every source beyond the
	// ones reported one by one (Options.ReportSources).
	IP netip.Addr
	// Proto, Path and User are those of the latest refusal counted
	// (User as sent, cut to 64 bytes; "" without credentials).
	Proto, Path, User string
	// Count is the number of refusals reported; Throttled of them were
	// refused unchecked because of the source's back-off, Busy because
	// no verification slot became free in time.
	Count, Throttled, Busy int
}

// DenialSink receives reports; it must not block. The agent turns them
// into events.
type DenialSink interface {
	Denied(Denial)
}

type outcome uint8

const (
	outcomeDenied outcome = iota
	outcomeThrottled
	outcomeBusy
)

type reportKey struct {
	ip   netip.Addr
	kind string
}

// pendingDenials are refusals of one source not reported yet.
type pendingDenials struct {
	d   Denial
	due time.Time // of the next report
}

// reporter aggregates refusals so that a client guessing passwords at
// thousands a second produces one log line and one event per interval,
// not one each: the outbox that carries real telemetry stays its own.
type reporter struct {
	interval time.Duration
	max      int // sources reported one by one
	sink     DenialSink
	log      zerolog.Logger
	now      func() time.Time

	mu      sync.Mutex
	pending map[reportKey]*pendingDenials
	timer   *time.Timer
	armed   bool
	closed  bool
	running sync.WaitGroup // a running flush
}

func newReporter(interval time.Duration, max int, sink DenialSink, log zerolog.Logger, now func() time.Time) *reporter {
	r := &reporter{interval: interval, max: max, sink: sink, log: log, now: now, pending: map[reportKey]*pendingDenials{}}
	r.timer = time.AfterFunc(time.Hour, r.tick)
	r.timer.Stop()
	return r
}

func kindOf(a Action) string {
	switch a {
	case ActionPublish:
		return eventtype.PublisherDenied
	case ActionAPI:
		return eventtype.APIDenied
	default:
		return eventtype.ReaderDenied
	}
}

// deny counts one refusal.
func (r *reporter) deny(req *Request, ip netip.Addr, o outcome) {
	user := req.User
	if len(user) > 64 {
		user = user[:64]
	}
	user = strings.ToValidUTF8(user, "?")
	k := reportKey{ip: ip, kind: kindOf(req.Action)}
	now := r.now()

	r.mu.Lock()
	p := r.pending[k]
	if p == nil && !r.closed && len(r.pending) >= r.max {
		k.ip = netip.Addr{}
		p = r.pending[k]
	}
	fresh := p == nil
	if fresh {
		p = &pendingDenials{d: Denial{Kind: k.kind, IP: k.ip}, due: now.Add(r.interval)}
	}
	p.d.Proto, p.d.Path, p.d.User = req.Proto, req.Path, user
	p.d.Count++
	switch o {
	case outcomeThrottled:
		p.d.Throttled++
	case outcomeBusy:
		p.d.Busy++
	}
	var now1 *Denial
	if fresh {
		// The first refusal of a source goes out at once; later ones
		// are counted until the interval ends.
		d := p.d
		now1 = &d
		p.d.Count, p.d.Throttled, p.d.Busy = 0, 0, 0
		if !r.closed {
			r.pending[k] = p
			if !r.armed {
				r.armed = true
				r.timer.Reset(r.interval)
			}
		}
	}
	r.mu.Unlock()
	if now1 != nil {
		r.emit(*now1)
	}
}

// tick is the timer's: it reports the sources whose interval ended.
func (r *reporter) tick() { r.flush(false) }

// flush reports the sources whose interval ended, or all of them (final);
// sources that stayed quiet for an interval are forgotten.
func (r *reporter) flush(final bool) {
	r.mu.Lock()
	if r.closed && !final {
		r.mu.Unlock()
		return
	}
	if !final {
		r.running.Add(1)
		defer r.running.Done()
	}
	now := r.now()
	var out []Denial
	var next time.Time
	for k, p := range r.pending {
		if !final && now.Before(p.due) {
			if next.IsZero() || p.due.Before(next) {
				next = p.due
			}
			continue
		}
		if p.d.Count > 0 {
			out = append(out, p.d)
		}
		if final || p.d.Count == 0 {
			delete(r.pending, k)
			continue
		}
		p.d.Count, p.d.Throttled, p.d.Busy = 0, 0, 0
		p.due = now.Add(r.interval)
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	r.armed = !final && len(r.pending) > 0
	if r.armed {
		r.timer.Reset(max(next.Sub(now), time.Millisecond))
	}
	r.mu.Unlock()
	for _, d := range out {
		r.emit(d)
	}
}

func (r *reporter) emit(d Denial) {
	ip := "others"
	if d.IP.IsValid() {
		ip = d.IP.String()
	}
	r.log.Warn().Str("type", d.Kind).Str("ip", ip).Str("proto", d.Proto).Str("path", d.Path).Str("user", d.User).
		Int("count", d.Count).Int("throttled", d.Throttled).Int("busy", d.Busy).Msg("access denied")
	if r.sink != nil {
		r.sink.Denied(d)
	}
}

// close reports what is pending; later refusals are reported one by one.
func (r *reporter) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.timer.Stop()
	r.mu.Unlock()
	r.flush(true)
	r.running.Wait()
}
