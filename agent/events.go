package agent

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/uplink"
)

// eventQueue is the capacity between Event (called from streaming's
// goroutines, must not block) and the goroutine that appends to bbolt.
const eventQueue = 1024

// eventSink turns streaming's events and the agent's own into outbox
// messages on P/ID/events. Event and emit never block: a full queue drops
// the event, counts it and logs it.
type eventSink struct {
	log     zerolog.Logger
	now     func() time.Time
	ch      chan uplink.Event
	lost    atomic.Uint64 // dropped because the queue was full
	enabled bool          // false without a broker: events are only logged
}

func newEventSink(log zerolog.Logger, enabled bool) *eventSink {
	e := &eventSink{
		log:     log.With().Str("component", "events").Logger(),
		now:     time.Now,
		enabled: enabled,
	}
	if enabled {
		// 80 KiB: only an agent with an uplink queues events.
		e.ch = make(chan uplink.Event, eventQueue)
	}
	return e
}

// Event implements streaming.EventSink.
func (e *eventSink) Event(ev streaming.Event) {
	var detail any
	if ev.Detail != "" {
		detail = ev.Detail // already redacted by streaming
	}
	e.emit(ev.Type, ev.Path, detail)
}

// Denied implements auth.DenialSink: one event (and one log line) per
// aggregated report, its count in the detail.
func (e *eventSink) Denied(d auth.Denial) {
	ip := "others"
	if d.IP.IsValid() {
		ip = d.IP.String()
	}
	detail := map[string]any{"ip": ip, "count": d.Count}
	if d.Proto != "" {
		detail["proto"] = d.Proto
	}
	if d.User != "" {
		detail["user"] = d.User
	}
	if d.Throttled > 0 {
		detail["throttled"] = d.Throttled
	}
	if d.Busy > 0 {
		detail["busy"] = d.Busy
	}
	e.emit(d.Kind, d.Path, detail)
}

// emit queues an event. detail must hold no secret.
func (e *eventSink) emit(typ, path string, detail any) {
	l := e.log.Info().Str("type", typ)
	if path != "" {
		l = l.Str("path", path)
	}
	if detail != nil {
		l = l.Interface("detail", detail)
	}
	l.Msg("event")
	if !e.enabled {
		return
	}
	select {
	case e.ch <- uplink.Event{TS: e.now().UTC(), Type: typ, Path: path, Detail: detail}:
	default:
		// Counted for health, /metrics and the next outbox.dropped event;
		// logged at 1, 2, 4, 8... losses so a stuck queue cannot flood the log.
		if n := e.lost.Add(1); n&(n-1) == 0 {
			e.log.Warn().Str("type", typ).Uint64("lost", n).Msg("event queue full, event dropped")
		}
	}
}

// run appends queued events to the outbox until ctx ends, then appends
// what is still queued (agent.stopping among it) and returns.
func (e *eventSink) run(ctx context.Context, ob *outbox) error {
	for {
		select {
		case ev := <-e.ch:
			ob.appendEvent(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-e.ch:
					ob.appendEvent(ev)
				default:
					return nil
				}
			}
		}
	}
}

// outboxStore is the part of the store the outbox needs; *store.Store
// satisfies it.
type outboxStore interface {
	AppendOutbox(kind string, build func(seq uint64) ([]byte, error)) (seq uint64, dropped int, err error)
	AppendOutboxIfRoom(kind string, build func(seq uint64) ([]byte, error)) (seq uint64, err error)
	OutboxAfter(after uint64, max int) ([]store.OutboxMsg, error)
	DeleteOutbox(seqs ...uint64) error
	OutboxSignal() <-chan struct{}
	OutboxStats() (store.OutboxStats, error)
}

// outbox wraps the store's outbox: it satisfies uplink.Outbox for the
// drainer and appends health and events with their seq. It counts what is
// lost (evicted by the bounds, failed to store) for the next
// outbox.dropped notice, which notify appends at most once per call.
type outbox struct {
	st  outboxStore
	log zerolog.Logger
	now func() time.Time // default time.Now

	mu      sync.Mutex
	pending uplink.OutboxDropped // lost since the last notice; Dropped unset
	// lostNoticed is the event sink's loss count the last notice covered.
	lostNoticed uint64
	// failing counts appends failed in a row, so a full disk is logged
	// when it starts and when it ends, not at every append.
	failing uint64
}

func (o *outbox) Pending(after uint64, max int) ([]uplink.Message, error) {
	msgs, err := o.st.OutboxAfter(after, max)
	if err != nil {
		return nil, err
	}
	out := make([]uplink.Message, len(msgs))
	for i, m := range msgs {
		out[i] = uplink.Message{Seq: m.Seq, Kind: m.Kind, Payload: m.Payload}
	}
	return out, nil
}

func (o *outbox) Acked(seqs ...uint64) error { return o.st.DeleteOutbox(seqs...) }

func (o *outbox) Appended() <-chan struct{} { return o.st.OutboxSignal() }

func (o *outbox) appendEvent(ev uplink.Event) {
	o.append(uplink.KindEvents, func(seq uint64) ([]byte, error) {
		ev.Seq = seq
		return marshalRedacted(ev)
	})
}

func (o *outbox) appendHealth(h uplink.Health) {
	o.append(uplink.KindHealth, func(seq uint64) ([]byte, error) {
		h.Seq = seq
		return marshalRedacted(h)
	})
}

// marshalRedacted encodes what leaves the box. Health and events carry
// redacted sources and errors already; this pass catches a detail that
// was not.
func marshalRedacted(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return redact.JSON(b), nil
}

func (o *outbox) append(kind string, build func(uint64) ([]byte, error)) {
	seq, dropped, err := o.st.AppendOutbox(kind, build)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.failed(seq, err)
		if o.failing++; o.failing == 1 {
			o.log.Error().Err(err).Str("kind", kind).Uint64("seq", seq).
				Msg("outbox append failed; counting the messages lost until appends succeed")
		} else {
			o.log.Debug().Err(err).Str("kind", kind).Uint64("seq", seq).Msg("outbox append failed")
		}
		return
	}
	if o.failing > 0 {
		o.log.Info().Uint64("failed", o.failing).Uint64("seq", seq).Msg("outbox appends succeed again")
		o.failing = 0
	}
	if dropped > 0 {
		o.lost()
		o.pending.Evicted += uint64(dropped)
	}
}

// failed counts a message that took seq (0: none) and was not stored.
// The caller holds o.mu.
func (o *outbox) failed(seq uint64, err error) {
	o.lost()
	o.pending.Failed++
	o.pending.Reason = err.Error()
	if seq > 0 {
		if o.pending.FirstFailedSeq == 0 {
			o.pending.FirstFailedSeq = seq
		}
		o.pending.LastFailedSeq = seq
	}
}

// lost starts the period of the next notice. The caller holds o.mu.
func (o *outbox) lost() {
	if o.pending.Since.IsZero() {
		o.pending.Since = o.clock().UTC()
	}
}

func (o *outbox) clock() time.Time {
	if o.now != nil {
		return o.now()
	}
	return time.Now()
}

// notify appends one outbox.dropped event with exact counts of what was
// lost since the previous one, eventsLost being the event sink's running
// total. It appends only where the bounds leave room, so a notice never
// pushes out telemetry: without room the counts wait for the next call.
// A notice that fails to store is itself counted as failed.
func (o *outbox) notify(eventsLost uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.pending
	d.EventsLost = eventsLost - o.lostNoticed
	if d.EventsLost > 0 && d.Since.IsZero() {
		d.Since = o.clock().UTC()
	}
	d.Dropped = d.Evicted + d.Failed
	if d.Dropped == 0 && d.EventsLost == 0 {
		return
	}
	ev := uplink.Event{TS: o.clock().UTC(), Type: uplink.EventOutboxDropped, Detail: d}
	seq, err := o.st.AppendOutboxIfRoom(uplink.KindEvents, func(seq uint64) ([]byte, error) {
		ev.Seq = seq
		return json.Marshal(ev)
	})
	switch {
	case err == nil:
		o.pending = uplink.OutboxDropped{}
		o.lostNoticed = eventsLost
	case errors.Is(err, store.ErrOutboxFull):
		// Outage with a full outbox: the counts keep growing until the
		// drain makes room.
		if d.EventsLost > 0 && o.pending.Since.IsZero() {
			o.pending.Since = d.Since
		}
	default:
		o.failed(seq, err)
		o.log.Debug().Err(err).Uint64("seq", seq).Msg("outbox.dropped notice not stored")
	}
}

var _ uplink.Outbox = (*outbox)(nil)
var _ streaming.EventSink = (*eventSink)(nil)
var _ auth.DenialSink = (*eventSink)(nil)
