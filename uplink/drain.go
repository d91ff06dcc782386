package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// pollInterval re-reads the outbox when no append signal came (a signal
// can be consumed by a drain that then lost its connection).
const pollInterval = 5 * time.Second

// errFlushTimeout ends a stop-time flush that did not empty the outbox.
var errFlushTimeout = errors.New("outbox flush timed out")

type flight struct {
	seq uint64
	tok paho.Token
}

// drain publishes outbox messages in seq order with at most InFlight
// unacknowledged and deletes each acknowledged prefix in one batch. It
// starts from the oldest queued message on every session, so a message
// whose PUBACK was lost with the connection is sent again (QoS 1: at least
// once; the fleet dedupes by seq).
//
// ctx ends the drain at once (connection lost). When stopping closes, the
// drain keeps going until nothing is queued or in flight, for at most
// two thirds of StopTimeout, then returns nil (or errFlushTimeout).
func (c *Client) drain(ctx context.Context, stopping <-chan struct{}) error {
	ob := c.opts.Outbox
	var (
		inflight []flight
		after    uint64 // highest seq handed to paho in this drain
		acked    []uint64
		flushing bool
		deadline <-chan time.Time
		appended <-chan struct{}
	)
	if ob != nil {
		appended = ob.Appended()
	}
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	startFlush := func() {
		flushing, stopping = true, nil
		t := time.NewTimer(c.opts.StopTimeout * 2 / 3) // the rest is for the offline status
		deadline = t.C
	}
	for {
		if ob != nil {
			if room := c.opts.InFlight - len(inflight); room > 0 {
				msgs, err := ob.Pending(after, room)
				if err != nil {
					return err
				}
				for _, m := range msgs {
					inflight = append(inflight, flight{m.Seq, c.mqtt.Publish(c.topics.Kind(m.Kind), 1, false, m.Payload)})
					after = m.Seq
				}
			}
		}
		if len(inflight) == 0 {
			if flushing {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-stopping:
				startFlush()
			case <-appended:
			case <-poll.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stopping:
			startFlush()
			continue
		case <-deadline:
			return errFlushTimeout
		case <-inflight[0].tok.Done():
		}
		acked = acked[:0]
		var failed error
		for len(inflight) > 0 && isDone(inflight[0].tok) {
			f := inflight[0]
			if err := f.tok.Error(); err != nil {
				failed = fmt.Errorf("publish seq %d: %w", f.seq, err)
				break
			}
			acked = append(acked, f.seq)
			inflight = inflight[1:]
		}
		if err := ob.Acked(acked...); err != nil {
			return err
		}
		c.published.Add(uint64(len(acked)))
		if len(acked) > 0 {
			c.lastPublished.Store(time.Now().UnixNano())
		}
		if failed != nil {
			return failed
		}
	}
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}
