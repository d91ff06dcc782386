package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camgate/camgate/uplink"
)

// Result is the outcome of a command for one agent.
type Result struct {
	ID string
	// Reply is nil when no reply came in time.
	Reply *uplink.Reply
	// Err is set when the command could not be published.
	Err error
	// Online is what the agent's retained status said when the command
	// was sent (false also when no status was known).
	Online bool
}

// OK tells whether the agent replied ok.
func (r Result) OK() bool { return r.Err == nil && r.Reply != nil && r.Reply.OK }

// Outcome is "ok", the reply's error code, "no reply" (with "(offline)"
// when the agent's status said so) or "not sent".
func (r Result) Outcome() string {
	switch {
	case r.Err != nil:
		return "not sent"
	case r.Reply == nil && !r.Online:
		return "no reply (offline)"
	case r.Reply == nil:
		return "no reply"
	case r.Reply.OK:
		return "ok"
	case r.Reply.Error != nil:
		return string(r.Reply.Error.Code)
	}
	return "failed"
}

// ManyOptions configure CommandMany. Zero values take the defaults in the
// comments.
type ManyOptions struct {
	// ReqID is the command id sent to every agent (each agent journals
	// it on its own): repeating a call with the same id gets the stored
	// replies instead of running the command again. Default: a fresh id.
	ReqID string
	// Timeout is how long replies are waited for; default 30s.
	Timeout time.Duration
	// ExpiresIn sets expiresAt on the command: an agent that gets it
	// later (it was offline and its session kept it) answers expired
	// instead of running it. Default: Timeout; negative: no expiry.
	ExpiresIn time.Duration
	// InFlight bounds the publishes not yet acknowledged by the broker;
	// default 256.
	InFlight int
	// Progress, when set, is called after each reply with the replies so
	// far and the total (from one goroutine at a time).
	Progress func(replied, total int)
	// Online tells Result.Online per agent; nil: every agent counts as
	// online.
	Online func(id string) bool
	Now    func() time.Time // default time.Now
}

// CommandMany sends command name with args to every agent in ids under
// one command id and collects the replies, one subscription
// (P/+/reply/REQID) for all of them, until every agent replied, Timeout
// passed or ctx ended. The results are sorted by agent id.
func (c *Client) CommandMany(ctx context.Context, ids []string, name string, args json.RawMessage, o ManyOptions) ([]Result, error) {
	if o.ReqID == "" {
		o.ReqID = NewID()
	}
	if strings.ContainsAny(o.ReqID, "+#/") {
		return nil, fmt.Errorf("command %s: unusable id %q", name, o.ReqID)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.ExpiresIn == 0 {
		o.ExpiresIn = o.Timeout
	}
	if o.InFlight <= 0 {
		o.InFlight = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cmd := uplink.Command{ID: o.ReqID, Args: args}
	if o.ExpiresIn > 0 {
		at := o.Now().Add(o.ExpiresIn).UTC().Truncate(time.Second)
		cmd.ExpiresAt = &at
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("command %s: %w", name, err)
	}

	want := make(map[string]*Result, len(ids))
	for _, id := range ids {
		r := &Result{ID: id, Online: true}
		if o.Online != nil {
			r.Online = o.Online(id)
		}
		want[id] = r
	}
	var mu sync.Mutex
	pending := len(want)
	allIn := make(chan struct{})
	if pending == 0 {
		close(allIn)
	}
	replyFilter := c.prefix + "/+/reply/" + o.ReqID
	handler := func(_ paho.Client, m paho.Message) {
		id, _, ok := uplink.ParseAgentTopic(c.prefix, m.Topic())
		if !ok {
			return
		}
		var rep uplink.Reply
		if json.Unmarshal(m.Payload(), &rep) != nil {
			return
		}
		mu.Lock()
		r, wanted := want[id]
		first := wanted && r.Reply == nil && r.Err == nil
		if first {
			r.Reply = &rep
			pending--
		}
		left := pending
		mu.Unlock()
		if !first {
			return
		}
		if o.Progress != nil {
			o.Progress(len(want)-left, len(want))
		}
		if left == 0 {
			close(allIn)
		}
	}
	if err := c.subscribe(ctx, map[string]byte{replyFilter: 1}, handler); err != nil {
		return nil, fmt.Errorf("command %s: subscribe replies: %w", name, err)
	}
	defer func() { c.mqtt.Unsubscribe(replyFilter).WaitTimeout(time.Second) }()

	// Publish with a bounded window of unacknowledged publishes.
	sorted := slices.Sorted(maps.Keys(want))
	type flight struct {
		id  string
		tok paho.Token
	}
	var window []flight
	settle := func(f flight) {
		if err := wait(ctx, f.tok); err != nil {
			mu.Lock()
			r := want[f.id]
			if r.Reply == nil && r.Err == nil {
				r.Err = err
				pending--
				if pending == 0 {
					close(allIn)
				}
			}
			mu.Unlock()
		}
	}
	for _, id := range sorted {
		if len(window) == o.InFlight {
			settle(window[0])
			window = window[1:]
		}
		window = append(window, flight{id, c.mqtt.Publish(c.prefix+"/"+id+"/cmd/"+name, 1, false, payload)})
	}
	for _, f := range window {
		settle(f)
	}
	select {
	case <-allIn:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Result, 0, len(want))
	for _, id := range sorted {
		out = append(out, *want[id])
	}
	return out, nil
}
