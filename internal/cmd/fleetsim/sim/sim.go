// Package sim is a simulated camgate agent for fleet-scale benchmarks and
// tests of the fleet side: thousands of them run in one process.
//
// What is real: the MQTT uplink (uplink.Client: persistent session, birth,
// last will, labels, the outbox drainer, the desired-state subscription),
// the bbolt store (agent/store: outbox with its seq, command journal,
// fleet paths, desired state), the wire documents (uplink.Health sized like
// a real agent's, events, replies, reports).
//
// What is simulated: there is no streaming and no HAL, so the health
// figures are made up (the shape and the size are a real agent's); the
// command table is small (ping, status, agent.update, anything else
// unknown_command) instead of the agent's dispatcher, which needs a path
// manager and the whole agent; agent.update downloads nothing: after
// UpdateTime its outcome (Options.Outcome) is played out like the real
// one — committed and rolled_back restart the uplink (offline status,
// new birth, with the new or the old version) and then raise their event,
// failed raises update.failed without a restart; desired state is checked
// for its version, persisted and reported, its paths stored as the fleet
// set, its labels put in the status, with no validation beyond decoding.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/uplink"
)

// Outcome is how a simulated update ends.
type Outcome int

// Outcomes.
const (
	Committed  Outcome = iota + 1 // the new version runs
	RolledBack                    // its trial failed: the old version runs again
	Failed                        // refused before the trial (no restart)
)

// Options configure New. Zero values take the defaults in the comments.
type Options struct {
	// Broker is the broker URL; required.
	Broker string
	// Prefix is the topic prefix; default "camgate".
	Prefix string
	// ID is the agent id; required.
	ID string
	// Version is the version the agent starts with; default "v1.0.0".
	Version string
	Labels  map[string]string
	// Dir holds the agent's camgate.db; required.
	Dir string
	// HealthInterval is how often health is published; default 30s. The
	// first one comes at a random point of the first interval, as agents
	// started at different times would.
	HealthInterval time.Duration
	// Paths is the number of paths in the health document; default 2.
	Paths int
	// UpdateTime is how long a simulated update takes; default 2s.
	UpdateTime time.Duration
	// Outcome decides how an update to version ends; default Committed.
	Outcome func(version string) Outcome
	// MinBackoff and MaxBackoff bound the uplink's reconnect wait;
	// defaults as the uplink's (1s, 60s).
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is the MQTT keep-alive; default as the uplink's (30s).
	KeepAlive time.Duration
	Log       zerolog.Logger
}

// Agent is one simulated agent.
type Agent struct {
	o     Options
	st    *store.Store
	log   zerolog.Logger
	boot  string
	start time.Time

	mu      sync.Mutex
	version string
	client  *uplink.Client
	labels  map[string]string

	// restart asks Run to start a new uplink client (after an update).
	restart  chan struct{}
	updating bool
	updates  int // updates accepted
	// pending is the event raised once the new client is up.
	pending *uplink.Event
}

// New opens the agent's store; nothing connects until Run.
func New(o Options) (*Agent, error) {
	if o.Prefix == "" {
		o.Prefix = "camgate"
	}
	if o.Version == "" {
		o.Version = "v1.0.0"
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 30 * time.Second
	}
	if o.Paths <= 0 {
		o.Paths = 2
	}
	if o.UpdateTime <= 0 {
		o.UpdateTime = 2 * time.Second
	}
	if o.Outcome == nil {
		o.Outcome = func(string) Outcome { return Committed }
	}
	st, err := store.Open(filepath.Join(o.Dir, store.FileName), store.Options{OutboxMaxMessages: 1000, OutboxMaxBytes: 1 << 20})
	if err != nil {
		return nil, fmt.Errorf("sim %s: %w", o.ID, err)
	}
	a := &Agent{
		o: o, st: st, log: o.Log.With().Str("agent", o.ID).Logger(), boot: fmt.Sprintf("%016x", rand.Uint64()),
		start: time.Now(), version: o.Version, labels: maps.Clone(o.Labels), restart: make(chan struct{}, 1),
	}
	if raw, _, err := st.DesiredState(); err == nil && raw != nil {
		var applied struct {
			Labels map[string]string `json:"labels"`
		}
		if json.Unmarshal(raw, &applied) == nil && applied.Labels != nil {
			a.labels = applied.Labels
		}
	}
	return a, nil
}

// Close closes the store; call it after Run returned.
func (a *Agent) Close() error { return a.st.Close() }

// ID is the agent id.
func (a *Agent) ID() string { return a.o.ID }

// Version is the version running now.
func (a *Agent) Version() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Updates is how many updates the agent has accepted (run) so far.
func (a *Agent) Updates() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.updates
}

// Connected tells whether the uplink has a session.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	c := a.client
	a.mu.Unlock()
	return c != nil && c.Connected()
}

// Run runs the agent until ctx ends: its uplink (a new one after each
// simulated restart), health, commands and desired state.
func (a *Agent) Run(ctx context.Context) error {
	first := time.Duration(rand.Int64N(int64(a.o.HealthInterval)))
	health := time.NewTimer(first)
	defer health.Stop()
	for {
		c, err := a.newClient()
		if err != nil {
			return err
		}
		cctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(cctx) }()
		restarting, err := a.serve(ctx, c, health)
		cancel()
		if cerr := <-done; err == nil {
			err = cerr
		}
		if err != nil || !restarting {
			return err
		}
	}
}

func (a *Agent) newClient() (*uplink.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := uplink.New(uplink.Options{
		Broker: a.o.Broker, TopicPrefix: a.o.Prefix, AgentID: a.o.ID, Version: a.version, BootID: a.boot,
		StartedAt: a.start, Labels: a.labels, Outbox: outbox{a.st}, InFlight: 8, CommandQueue: 16,
		MinBackoff: a.o.MinBackoff, MaxBackoff: a.o.MaxBackoff, KeepAlive: a.o.KeepAlive,
		StopTimeout: 2 * time.Second, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	a.client = c
	if ev := a.pending; ev != nil {
		a.pending = nil
		a.appendEvent(*ev)
	}
	return c, nil
}

// serve handles one client's life; restarting is true when an update
// asked for a new client.
func (a *Agent) serve(ctx context.Context, c *uplink.Client, health *time.Timer) (restarting bool, err error) {
	var updateDone <-chan time.Time
	var updateTo string
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-a.restart:
			return true, nil
		case <-health.C:
			a.appendHealth()
			health.Reset(a.o.HealthInterval)
		case in := <-c.Commands():
			reply, id, upd := a.command(in)
			a.replyAndAck(ctx, c, in, id, reply)
			if upd != "" {
				updateTo = upd
				updateDone = time.After(a.o.UpdateTime)
				a.appendEvent(uplink.Event{Type: uplink.EventUpdateProgress, Detail: map[string]any{"version": upd, "percent": 100}})
			}
		case in := <-c.Busy():
			// As the agent does: a burst beyond the queue is told to come
			// back, not dropped.
			var cmd uplink.Command
			if json.Unmarshal(in.Payload, &cmd) == nil && cmd.ID != "" {
				a.replyAndAck(ctx, c, in, cmd.ID, encode(cmd.ID, in.Name, nil, &uplink.Error{Code: uplink.CodeBusy, Message: "busy"}))
			} else {
				in.Ack()
			}
		case raw := <-c.Desired():
			a.desired(ctx, c, raw)
		case <-updateDone:
			updateDone = nil
			a.finishUpdate(updateTo)
		}
	}
}

// replyAndAck publishes the reply and then acknowledges the command, as
// the agent does (the uplink acknowledges nothing by itself). A reply that
// cannot be sent leaves the command unacknowledged: the broker sends it
// again on the next session and the journal answers it.
func (a *Agent) replyAndAck(ctx context.Context, c *uplink.Client, in uplink.Incoming, id string, reply []byte) {
	if id != "" {
		if err := c.Reply(ctx, id, reply); err != nil {
			a.log.Debug().Err(err).Msg("reply not sent")
			return
		}
	}
	in.Ack()
}

// command runs one command with the store's journal, as the agent does.
func (a *Agent) command(in uplink.Incoming) (reply []byte, id, update string) {
	var cmd uplink.Command
	if json.Unmarshal(in.Payload, &cmd) != nil || cmd.ID == "" {
		return nil, "", ""
	}
	entry, found, err := a.st.BeginCommand(cmd.ID, in.Name)
	if err != nil {
		return encode(cmd.ID, in.Name, nil, &uplink.Error{Code: uplink.CodeInternal, Message: err.Error()}), cmd.ID, ""
	}
	if found {
		return entry.Reply, cmd.ID, ""
	}
	var result any
	var werr *uplink.Error
	switch {
	case cmd.ExpiresAt != nil && time.Now().After(*cmd.ExpiresAt):
		werr = &uplink.Error{Code: uplink.CodeExpired, Message: "expired"}
	case in.Name == "ping":
		result = map[string]any{"pong": true, "ts": time.Now().UTC()}
	case in.Name == "status":
		result = a.health(0)
	case in.Name == "agent.update":
		result, werr, update = a.startUpdate(cmd.Args)
	default:
		werr = &uplink.Error{Code: uplink.CodeUnknownCommand, Message: fmt.Sprintf("unknown command %q", in.Name)}
	}
	reply = encode(cmd.ID, in.Name, result, werr)
	if err := a.st.FinishCommand(cmd.ID, in.Name, reply); err != nil {
		a.log.Warn().Err(err).Msg("journal")
	}
	return reply, cmd.ID, update
}

func encode(id, name string, result any, werr *uplink.Error) []byte {
	r := uplink.Reply{ID: id, Cmd: name, OK: werr == nil, Error: werr}
	if werr == nil {
		r.Result, _ = json.Marshal(result)
	}
	b, _ := json.Marshal(r)
	return b
}

func (a *Agent) startUpdate(args json.RawMessage) (any, *uplink.Error, string) {
	var req struct {
		URL       string `json:"url"`
		SHA256    string `json:"sha256"`
		Signature string `json:"signature"`
		Version   string `json:"version"`
	}
	if json.Unmarshal(args, &req) != nil || req.URL == "" || req.SHA256 == "" || req.Signature == "" {
		return nil, &uplink.Error{Code: uplink.CodeBadRequest, Message: "url, sha256 and signature are required"}, ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	running := a.version
	if req.Version != "" && req.Version == running {
		return map[string]any{"noop": true, "version": req.Version, "running": running}, nil, ""
	}
	if a.updating {
		return nil, &uplink.Error{Code: uplink.CodeConflict, Message: "an update is under way"}, ""
	}
	a.updating = true
	a.updates++
	to := req.Version
	if to == "" {
		to = running + "+1"
	}
	return map[string]any{"accepted": true, "version": req.Version, "running": running}, nil, to
}

// finishUpdate plays the outcome out.
func (a *Agent) finishUpdate(to string) {
	a.mu.Lock()
	from := a.version
	a.updating = false
	now := time.Now().UTC()
	switch a.o.Outcome(to) {
	case Committed:
		a.version = to
		a.pending = &uplink.Event{Type: uplink.EventUpdateCommitted, Detail: map[string]any{"version": to, "from": from, "at": now}}
	case RolledBack:
		a.pending = &uplink.Event{Type: uplink.EventUpdateRolledBack, Detail: map[string]any{"version": to, "at": now, "reason": "simulated: the candidate did not become healthy"}}
	default:
		a.mu.Unlock()
		a.appendEvent(uplink.Event{Type: uplink.EventUpdateFailed, Detail: map[string]any{"version": to, "check": "signature", "error": "simulated: signature does not verify"}})
		return
	}
	a.mu.Unlock()
	select {
	case a.restart <- struct{}{}:
	default:
	}
}

// desired applies a desired document the simple way (see the package
// doc) and publishes the report.
func (a *Agent) desired(ctx context.Context, c *uplink.Client, raw []byte) {
	var d uplink.Desired
	rep := uplink.Reported{AppliedAt: time.Now().UTC(), Errors: []uplink.StateError{}}
	prevRaw, prevRep, _ := a.st.DesiredState()
	var prev struct {
		Version uint64 `json:"version"`
	}
	_ = json.Unmarshal(prevRaw, &prev)
	if err := json.Unmarshal(raw, &d); err != nil || d.Version == 0 {
		rep.Errors = append(rep.Errors, uplink.StateError{Key: "version", Code: uplink.CodeBadRequest, Message: "no version"})
	} else if d.Version <= prev.Version {
		if prevRep != nil {
			_ = c.PublishReported(ctx, prevRep)
		}
		return
	} else {
		rep.Version = d.Version
		if len(d.Paths) > 0 {
			var paths map[string]conf.PathConf
			if err := json.Unmarshal(d.Paths, &paths); err != nil {
				rep.Errors = append(rep.Errors, uplink.StateError{Key: "paths", Code: uplink.CodeBadRequest, Message: err.Error()})
			} else if err := a.st.SetFleetPaths(paths); err != nil {
				rep.Errors = append(rep.Errors, uplink.StateError{Key: "paths", Code: uplink.CodeInternal, Message: err.Error()})
			}
		}
		// The configured labels win, as on a real agent.
		labels := map[string]string{}
		var dl map[string]string
		if len(d.Labels) > 0 && json.Unmarshal(d.Labels, &dl) == nil {
			maps.Copy(labels, dl)
		}
		maps.Copy(labels, a.o.Labels)
		applied, _ := json.Marshal(map[string]any{"version": d.Version, "labels": labels})
		rep.OK = len(rep.Errors) == 0
		b, _ := json.Marshal(rep)
		if err := a.st.PutDesiredState(applied, b); err != nil {
			a.log.Warn().Err(err).Msg("save desired state")
		}
		a.mu.Lock()
		changed := !maps.Equal(a.labels, labels)
		a.labels = labels
		a.mu.Unlock()
		if changed {
			_ = c.SetLabels(ctx, labels)
		}
	}
	rep.OK = len(rep.Errors) == 0
	b, _ := json.Marshal(rep)
	if err := c.PublishReported(ctx, b); err != nil {
		a.log.Debug().Err(err).Msg("report not published")
	}
}

func (a *Agent) appendEvent(ev uplink.Event) {
	ev.TS = time.Now().UTC()
	_, _, err := a.st.AppendOutbox(uplink.KindEvents, func(seq uint64) ([]byte, error) {
		ev.Seq = seq
		return json.Marshal(ev)
	})
	if err != nil {
		a.log.Warn().Err(err).Msg("append event")
	}
}

func (a *Agent) appendHealth() {
	_, _, err := a.st.AppendOutbox(uplink.KindHealth, func(seq uint64) ([]byte, error) {
		return json.Marshal(a.health(seq))
	})
	if err != nil {
		a.log.Warn().Err(err).Msg("append health")
	}
}

// HealthDoc is a health document as the agent publishes it.
func (a *Agent) HealthDoc() uplink.Health { return a.health(1) }

// health is a document with a real agent's members and plausible
// figures.
func (a *Agent) health(seq uint64) uplink.Health {
	a.mu.Lock()
	version := a.version
	connected := a.client != nil && a.client.Connected()
	a.mu.Unlock()
	up := time.Since(a.start).Seconds()
	cpu := 1 + rand.Float64()*4
	temp := 45 + rand.Float64()*10
	h := uplink.Health{
		Seq: seq, TS: time.Now().UTC(),
		Agent: uplink.AgentHealth{ID: a.o.ID, Version: version, Uptime: up, BootCount: a.st.BootCount(),
			GoVersion: runtime.Version(), Goroutines: 40 + rand.IntN(20), HeapBytes: 6<<20 + uint64(rand.IntN(2<<20))},
		System: uplink.SystemHealth{CPUPercent: &cpu, MemTotal: 4 << 30, MemAvailable: 3<<30 + uint64(rand.IntN(1<<28)),
			DiskFree: 20<<30 + uint64(rand.IntN(1<<30)), TemperatureC: &temp, Uptime: up + 3600,
			Interfaces: []uplink.Interface{{Name: "eth0", Addrs: []string{"10.20.30.40/24", "fe80::5054:ff:fe12:3456/64"}, Up: true}}},
		Uplink: uplink.UplinkHealth{Connected: connected},
		OK:     true,
		Listeners: []uplink.ListenerHealth{
			{Name: "rtsp", Address: ":8554", State: "up", Connections: rand.IntN(4)},
			{Name: "webrtc", Address: ":8889", State: "up"},
			{Name: "api", Address: "127.0.0.1:9997", State: "up"},
		},
	}
	for i := range a.o.Paths {
		h.Paths = append(h.Paths, uplink.PathHealth{
			Name: fmt.Sprintf("cam%d", i+1), State: "ready", Source: fmt.Sprintf("rtsp://10.20.30.%d:554/Streaming/Channels/101", 100+i),
			OnDemand: false, Readers: rand.IntN(3), BytesIn: uint64(up * 250000), BytesOut: uint64(up * 250000 * 1.5),
			Bitrate: 2e6 + rand.Float64()*1e5,
		})
	}
	return h
}

// outbox adapts the store as the agent does.
type outbox struct{ st *store.Store }

func (o outbox) Pending(after uint64, max int) ([]uplink.Message, error) {
	msgs, err := o.st.OutboxAfter(after, max)
	out := make([]uplink.Message, len(msgs))
	for i, m := range msgs {
		out[i] = uplink.Message{Seq: m.Seq, Kind: m.Kind, Payload: m.Payload}
	}
	return out, err
}
func (o outbox) Acked(seqs ...uint64) error { return o.st.DeleteOutbox(seqs...) }
func (o outbox) Appended() <-chan struct{}  { return o.st.OutboxSignal() }
