package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camgate/camgate/uplink"
)

// AgentState is one agent as the broker's retained messages describe it.
type AgentState struct {
	ID string `json:"id"`
	// HasStatus is true when a status is retained: the agent connected
	// at least once.
	HasStatus bool          `json:"hasStatus"`
	Status    uplink.Status `json:"status"`
	// Desired and Reported are the retained desired-state documents; nil
	// when none is retained (or SnapshotOptions.State was off).
	Desired  *uplink.Desired  `json:"desired,omitempty"`
	Reported *uplink.Reported `json:"reported,omitempty"`
	// LastHealth is when health was last seen while listening; zero if
	// none.
	LastHealth time.Time `json:"lastHealth,omitzero"`
}

// Online tells whether the retained status says online.
func (a AgentState) Online() bool { return a.HasStatus && a.Status.State == uplink.StateOnline }

// SnapshotOptions configure Snapshot. Zero values take the defaults in
// the comments.
type SnapshotOptions struct {
	// State adds the retained desired and reported documents.
	State bool
	// Listen, when above 0, keeps listening this long after the retained
	// messages for health, to fill in LastHealth.
	Listen time.Duration
	// Quiet is how long no further retained message may arrive once the
	// end marker came back before the snapshot is taken as complete;
	// default 100ms.
	Quiet time.Duration
	// MaxWait bounds the wait for the end marker; default 30s.
	MaxWait time.Duration
}

// Snapshot reads the retained status (and with State the desired and
// reported documents) of every agent and returns them sorted by id.
//
// MQTT does not say when the retained messages of a subscription end, so
// after the SUBACK the client publishes a marker on
// P/all/sync/<client id>-<n> to itself: a broker handles our publish after
// it has queued the retained messages, so the marker comes back after
// them. A broker that sends retained messages from elsewhere (a cluster's
// retainer) may let the marker overtake some, so the snapshot also waits
// until none has arrived for Quiet. The subscriptions are QoS 0: a
// snapshot that loses its connection fails as a whole, and QoS 0 is not
// held back by the broker's in-flight window for QoS 1.
func (c *Client) Snapshot(ctx context.Context, o SnapshotOptions) ([]AgentState, error) {
	if o.Quiet <= 0 {
		o.Quiet = 100 * time.Millisecond
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	var (
		mu     sync.Mutex
		agents = map[string]*AgentState{}
		last   = time.Now()
	)
	get := func(id string) *AgentState {
		if a, ok := agents[id]; ok {
			return a
		}
		a := &AgentState{ID: id}
		agents[id] = a
		return a
	}
	marker := c.prefix + "/" + uplink.BroadcastID + "/sync/" + c.clientID + "-" + strconv.FormatUint(c.seq.Add(1), 10)
	markerSeen := make(chan struct{})
	var markerOnce sync.Once
	handler := func(_ paho.Client, m paho.Message) {
		if m.Topic() == marker {
			markerOnce.Do(func() { close(markerSeen) })
			return
		}
		id, kind, ok := uplink.ParseAgentTopic(c.prefix, m.Topic())
		if !ok || id == uplink.BroadcastID {
			return
		}
		p := m.Payload()
		mu.Lock()
		defer mu.Unlock()
		last = time.Now()
		switch kind {
		case "status":
			var st uplink.Status
			if len(p) > 0 && json.Unmarshal(p, &st) == nil {
				a := get(id)
				a.Status, a.HasStatus = st, true
			}
		case "state/desired":
			var d uplink.Desired
			if len(p) > 0 && json.Unmarshal(p, &d) == nil {
				get(id).Desired = &d
			}
		case "state/reported":
			var r uplink.Reported
			if len(p) > 0 && json.Unmarshal(p, &r) == nil {
				get(id).Reported = &r
			}
		case uplink.KindHealth:
			get(id).LastHealth = time.Now()
		}
	}
	filters := map[string]byte{c.prefix + "/+/status": 0, marker: 0}
	if o.State {
		filters[c.prefix+"/+/state/desired"] = 0
		filters[c.prefix+"/+/state/reported"] = 0
	}
	if o.Listen > 0 {
		filters[c.prefix+"/+/"+uplink.KindHealth] = 0
	}
	if err := c.subscribe(ctx, filters, handler); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer func() { c.mqtt.Unsubscribe(slices.Collect(maps.Keys(filters))...).WaitTimeout(time.Second) }()
	if err := c.Publish(ctx, marker, nil); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	maxWait := time.NewTimer(o.MaxWait)
	defer maxWait.Stop()
	select {
	case <-markerSeen:
	case <-maxWait.C:
		return nil, fmt.Errorf("snapshot: the end marker did not come back within %s", o.MaxWait)
	case <-ctx.Done():
		return nil, fmt.Errorf("snapshot: %w", ctx.Err())
	}
	for {
		mu.Lock()
		wait := o.Quiet - time.Since(last)
		mu.Unlock()
		if wait <= 0 {
			break
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	if o.Listen > 0 {
		if err := sleepCtx(ctx, o.Listen); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]AgentState, 0, len(agents))
	for _, a := range agents {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b AgentState) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
