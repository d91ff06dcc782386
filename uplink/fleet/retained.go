package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camgate/camgate/uplink"
)

// retainedOptions bound collectRetained. Zero values take the defaults in
// the comments.
type retainedOptions struct {
	// Quiet is how long no message may arrive, once the end marker came
	// back, before the retained messages count as complete; default 100ms.
	Quiet time.Duration
	// NoMarker is how long no message may arrive before they count as
	// complete without the marker (a broker whose ACL drops the marker
	// silently); default 3s.
	NoMarker time.Duration
	// MaxWait bounds the whole wait; default 30s.
	MaxWait time.Duration
}

// collectRetained subscribes to filters (QoS 0) with handler and returns
// once the broker has sent their retained messages; the caller
// unsubscribes with the returned function.
//
// MQTT does not say when the retained messages of a subscription end, so
// after the SUBACK the client publishes an empty marker on
// P/all/sync/<client id>-<n> to itself: a broker handles our publish after
// it has queued the retained messages, so the marker comes back after
// them. A broker that sends retained messages from elsewhere (a cluster's
// retainer) may let the marker overtake some, so the wait also lasts
// until none arrived for Quiet; without the marker, until none arrived for
// NoMarker. QoS 0 is not held back by the broker's in-flight window, and a
// lost connection fails the whole collection anyway.
func (c *Client) collectRetained(ctx context.Context, filters []string, handler paho.MessageHandler, o retainedOptions) (unsubscribe func(), err error) {
	if o.Quiet <= 0 {
		o.Quiet = 100 * time.Millisecond
	}
	if o.NoMarker <= 0 {
		o.NoMarker = 3 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	marker := c.prefix + "/" + uplink.BroadcastID + "/sync/" + c.clientID + "-" + strconv.FormatUint(c.seq.Add(1), 10)
	var (
		mu         sync.Mutex
		last       = time.Now()
		markerSeen bool
	)
	h := func(cl paho.Client, m paho.Message) {
		mu.Lock()
		last = time.Now()
		if m.Topic() == marker {
			markerSeen = true
		}
		mu.Unlock()
		if m.Topic() != marker {
			handler(cl, m)
		}
	}
	subs := map[string]byte{marker: 0}
	for _, f := range filters {
		subs[f] = 0
	}
	if err := c.subscribe(ctx, subs, h); err != nil {
		return nil, err
	}
	unsubscribe = func() { c.mqtt.Unsubscribe(slices.Collect(maps.Keys(subs))...).WaitTimeout(time.Second) }
	if err := c.Publish(ctx, marker, nil); err != nil {
		unsubscribe()
		return nil, err
	}
	deadline := time.Now().Add(o.MaxWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		mu.Lock()
		idle, seen := time.Since(last), markerSeen
		mu.Unlock()
		if (seen && idle >= o.Quiet) || idle >= o.NoMarker {
			return unsubscribe, nil
		}
		if time.Now().After(deadline) {
			unsubscribe()
			return nil, fmt.Errorf("retained messages still arriving after %s", o.MaxWait)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			unsubscribe()
			return nil, ctx.Err()
		}
	}
}
