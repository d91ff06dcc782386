package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	// Quiet and MaxWait bound the wait for the retained messages (see
	// collectRetained); defaults 100ms and 30s.
	Quiet, MaxWait time.Duration
}

// Snapshot reads the retained status (and with State the desired and
// reported documents) of every agent and returns them sorted by id. The
// end of the retained messages is found as collectRetained says.
func (c *Client) Snapshot(ctx context.Context, o SnapshotOptions) ([]AgentState, error) {
	var (
		mu     sync.Mutex
		agents = map[string]*AgentState{}
	)
	get := func(id string) *AgentState {
		if a, ok := agents[id]; ok {
			return a
		}
		a := &AgentState{ID: id}
		agents[id] = a
		return a
	}
	handler := func(_ paho.Client, m paho.Message) {
		id, kind, ok := uplink.ParseAgentTopic(c.prefix, m.Topic())
		if !ok || id == uplink.BroadcastID {
			return
		}
		p := m.Payload()
		mu.Lock()
		defer mu.Unlock()
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
	filters := []string{c.prefix + "/+/status"}
	if o.State {
		filters = append(filters, c.prefix+"/+/state/desired", c.prefix+"/+/state/reported")
	}
	if o.Listen > 0 {
		filters = append(filters, c.prefix+"/+/"+uplink.KindHealth)
	}
	unsubscribe, err := c.collectRetained(ctx, filters, handler, retainedOptions{Quiet: o.Quiet, MaxWait: o.MaxWait})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer unsubscribe()
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
