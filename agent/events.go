package agent

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming"
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
		e.lost.Add(1)
		e.log.Warn().Str("type", typ).Msg("event queue full, event dropped")
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

// outbox wraps the store's outbox: it satisfies uplink.Outbox for the
// drainer and appends health and events with their seq, counting drops
// for the next health and outbox.dropped event.
type outbox struct {
	st      *store.Store
	log     zerolog.Logger
	dropped atomic.Uint64 // dropped since the last outbox.dropped event
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
	_, dropped, err := o.st.AppendOutbox(kind, build)
	if err != nil {
		o.log.Error().Err(err).Str("kind", kind).Msg("append to outbox")
		return
	}
	if dropped > 0 {
		o.dropped.Add(uint64(dropped))
	}
}

var _ uplink.Outbox = (*outbox)(nil)
var _ streaming.EventSink = (*eventSink)(nil)
