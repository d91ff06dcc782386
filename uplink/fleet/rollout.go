package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
)

// A staged rollout sends agent.update to a set of agents in waves: a
// canary wave, then waves growing by a factor, each waiting until its
// agents committed the update, rolled it back, failed it or ran out of
// time. It halts by itself once more agents failed than MaxFailures.
//
// Its progress is a retained document on P/all/rollout/ID, written before
// each wave's commands go out and every SaveEvery while it runs. The
// broker is the fleet's shared state (camgate has no server of its own):
// any fleet tool, on any machine, can show a rollout or resume it after
// the one running it was killed, and nothing depends on a file on one
// operator's laptop. Resuming sends the current wave's commands again
// under the same command id: an agent that already has it answers from
// its journal and does not update twice. An agent whose update finished
// while no tool watched is recognised by the version in its retained
// status.

// Agent states in a rollout.
const (
	RolloutPending    = "pending"     // in a started wave, command not sent yet
	RolloutSent       = "sent"        // command published, no reply yet
	RolloutAccepted   = "accepted"    // the agent took the update on
	RolloutCommitted  = "committed"   // running the new version
	RolloutNoop       = "noop"        // it already ran the version
	RolloutRolledBack = "rolled_back" // the new version failed its trial
	RolloutFailed     = "failed"      // refused or failed before its trial
	RolloutTimeout    = "timeout"     // no outcome within the wave timeout
)

// Rollout states.
const (
	RolloutRunning = "running"
	RolloutHalted  = "halted"
	RolloutDone    = "done"
)

// RolloutAgent is one agent's progress.
type RolloutAgent struct {
	Wave   int       `json:"wave"`
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Terminal tells whether the agent's update has an outcome.
func (a RolloutAgent) Terminal() bool {
	switch a.State {
	case RolloutCommitted, RolloutNoop, RolloutRolledBack, RolloutFailed, RolloutTimeout:
		return true
	}
	return false
}

// Failure tells whether the outcome counts against MaxFailures.
func (a RolloutAgent) Failure() bool {
	switch a.State {
	case RolloutRolledBack, RolloutFailed, RolloutTimeout:
		return true
	}
	return false
}

// RolloutWave is one wave: Agents[Start:Start+Size].
type RolloutWave struct {
	Start     int        `json:"start"`
	Size      int        `json:"size"`
	StartedAt time.Time  `json:"startedAt"`
	Deadline  time.Time  `json:"deadline"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
}

// Rollout is the retained rollout document.
type Rollout struct {
	ID        string `json:"id"`
	URL       string `json:"url"`
	SHA256    string `json:"sha256"`
	Signature string `json:"signature"`
	// Version is what the file holds; learned from the first
	// update.committed when not given.
	Version string `json:"version,omitempty"`
	// Target is how the agents were chosen (-l site=plant-3, --all, ids).
	Target string `json:"target"`
	// Agents in the order they are updated.
	Agents      []string `json:"agents"`
	Canary      int      `json:"canary"`
	Growth      float64  `json:"growth"`
	MaxWave     int      `json:"maxWave,omitempty"`
	MaxFailures int      `json:"maxFailures"`
	// WaveTimeout is how long the agents of a wave have for their update.
	WaveTimeout string `json:"waveTimeout"`

	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Owner     string    `json:"owner"`
	Heartbeat time.Time `json:"heartbeat"`
	Created   time.Time `json:"created"`

	Waves    []RolloutWave            `json:"waves"`
	Progress map[string]*RolloutAgent `json:"progress"`
}

// RolloutPlan starts a rollout (NewRollout). Zero values take the
// defaults in the comments.
type RolloutPlan struct {
	// ID names the rollout (a topic level); default r-<time>-<random>.
	ID                     string
	URL, SHA256, Signature string
	// Version the file holds: sent with agent.update (an agent already
	// running it answers noop) and matched against the events and the
	// retained status. Optional but recommended.
	Version string
	Target  string
	Agents  []string
	// Canary is the size of the first wave; default 1.
	Canary int
	// Growth multiplies each next wave's size; default 2.
	Growth float64
	// MaxWave caps a wave's size; 0: no cap.
	MaxWave int
	// MaxFailures is how many failed agents the rollout tolerates; one
	// more halts it. Default 0.
	MaxFailures int
	// WaveTimeout is how long a wave's agents have to end their update
	// (download, checks, trial); default 10m.
	WaveTimeout time.Duration
}

// NewRollout checks plan and returns its document, not yet running.
func NewRollout(plan RolloutPlan, now time.Time) (*Rollout, error) {
	if plan.ID == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		plan.ID = "r-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	}
	if err := uplink.ValidateAgentID(plan.ID); err != nil {
		return nil, fmt.Errorf("rollout id: %w", err)
	}
	if plan.URL == "" || plan.SHA256 == "" || plan.Signature == "" {
		return nil, fmt.Errorf("rollout: url, sha256 and the signature are required")
	}
	if len(plan.Agents) == 0 {
		return nil, fmt.Errorf("rollout: no agents selected")
	}
	if plan.Canary <= 0 {
		plan.Canary = 1
	}
	if plan.Growth < 1 {
		plan.Growth = 2
	}
	if plan.MaxFailures < 0 {
		plan.MaxFailures = 0
	}
	if plan.WaveTimeout <= 0 {
		plan.WaveTimeout = 10 * time.Minute
	}
	seen := map[string]bool{}
	for _, id := range plan.Agents {
		if seen[id] {
			return nil, fmt.Errorf("rollout: agent %s listed twice", id)
		}
		seen[id] = true
	}
	return &Rollout{
		ID: plan.ID, URL: plan.URL, SHA256: plan.SHA256, Signature: plan.Signature, Version: plan.Version,
		Target: plan.Target, Agents: append([]string(nil), plan.Agents...), Canary: plan.Canary, Growth: plan.Growth,
		MaxWave: plan.MaxWave, MaxFailures: plan.MaxFailures, WaveTimeout: plan.WaveTimeout.String(),
		State: RolloutRunning, Created: now.UTC(), Progress: map[string]*RolloutAgent{},
	}, nil
}

// Failures counts the agents whose update failed.
func (r *Rollout) Failures() int {
	n := 0
	for _, p := range r.Progress {
		if p.Failure() {
			n++
		}
	}
	return n
}

// WaveCounts counts the states of wave i's agents (not yet sent:
// pending).
func (r *Rollout) WaveCounts(i int) map[string]int {
	out := map[string]int{}
	w := r.Waves[i]
	for _, id := range r.Agents[w.Start : w.Start+w.Size] {
		if p, ok := r.Progress[id]; ok {
			out[p.State]++
		} else {
			out[RolloutPending]++
		}
	}
	return out
}

// Clone is a deep copy (for showing while the rollout runs).
func (r *Rollout) Clone() *Rollout {
	c := *r
	c.Agents = append([]string(nil), r.Agents...)
	c.Waves = append([]RolloutWave(nil), r.Waves...)
	c.Progress = make(map[string]*RolloutAgent, len(r.Progress))
	for k, v := range r.Progress {
		p := *v
		c.Progress[k] = &p
	}
	return &c
}

// nextWaveSize is the size of the wave after the ones started.
func (r *Rollout) nextWaveSize() int {
	left := len(r.Agents) - r.started()
	if left <= 0 {
		return 0
	}
	size := r.Canary
	if n := len(r.Waves); n > 0 {
		size = int(math.Ceil(float64(r.Waves[n-1].Size) * r.Growth))
	}
	if r.MaxWave > 0 {
		size = min(size, r.MaxWave)
	}
	return max(1, min(size, left))
}

func (r *Rollout) started() int {
	if n := len(r.Waves); n > 0 {
		return r.Waves[n-1].Start + r.Waves[n-1].Size
	}
	return 0
}

// RolloutOptions configure RunRollout. Zero values take the defaults in
// the comments.
type RolloutOptions struct {
	// SaveEvery is how often the document is written while it changes,
	// and the heartbeat; default 2s.
	SaveEvery time.Duration
	// Changed, when set, is called with a copy of the document after
	// changes, at most every 200ms, and once at the end.
	Changed func(*Rollout)
	Now     func() time.Time // default time.Now
}

func (o *RolloutOptions) fill() {
	if o.SaveEvery <= 0 {
		o.SaveEvery = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// LoadRollout reads the retained document of rollout id.
func (c *Client) LoadRollout(ctx context.Context, id string) (*Rollout, error) {
	docs, err := c.retainedOn(ctx, uplink.RolloutTopic(c.prefix, id))
	if err != nil {
		return nil, fmt.Errorf("load rollout %s: %w", id, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("load rollout %s: %w", id, ErrNoRollout)
	}
	var r Rollout
	if err := json.Unmarshal(docs[0], &r); err != nil {
		return nil, fmt.Errorf("load rollout %s: %w", id, err)
	}
	if r.Progress == nil {
		r.Progress = map[string]*RolloutAgent{}
	}
	return &r, nil
}

// Rollouts reads every retained rollout document.
func (c *Client) Rollouts(ctx context.Context) ([]*Rollout, error) {
	docs, err := c.retainedOn(ctx, uplink.RolloutTopic(c.prefix, "+"))
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	var out []*Rollout
	for _, d := range docs {
		var r Rollout
		if json.Unmarshal(d, &r) == nil {
			out = append(out, &r)
		}
	}
	return out, nil
}

// retainedOn collects the retained messages on filter.
func (c *Client) retainedOn(ctx context.Context, filter string) ([][]byte, error) {
	var mu sync.Mutex
	var got [][]byte
	h := func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) > 0 {
			mu.Lock()
			got = append(got, append([]byte(nil), m.Payload()...))
			mu.Unlock()
		}
	}
	unsubscribe, err := c.collectRetained(ctx, []string{filter}, h, retainedOptions{})
	if err != nil {
		return nil, err
	}
	unsubscribe()
	mu.Lock()
	defer mu.Unlock()
	return got, nil
}

// SaveRollout writes r as its retained document.
func (c *Client) SaveRollout(ctx context.Context, r *Rollout) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("save rollout %s: %w", r.ID, err)
	}
	if err := wait(ctx, c.mqtt.Publish(uplink.RolloutTopic(c.prefix, r.ID), 1, true, b)); err != nil {
		return fmt.Errorf("save rollout %s: %w", r.ID, err)
	}
	return nil
}

// TakeRollout makes this client the owner of a running (or, with
// maxFailures set, a halted) rollout: refused with ErrRolloutOwned while
// another owner's heartbeat is younger than stale, unless force.
func (c *Client) TakeRollout(r *Rollout, now time.Time, stale time.Duration, force bool) error {
	if r.State == RolloutDone {
		return fmt.Errorf("rollout %s is done", r.ID)
	}
	if r.State == RolloutRunning && r.Owner != c.clientID && now.Sub(r.Heartbeat) < stale && !force {
		return fmt.Errorf("rollout %s: owner %s wrote %s ago: %w", r.ID, r.Owner, now.Sub(r.Heartbeat).Round(time.Second), ErrRolloutOwned)
	}
	r.Owner = c.clientID
	r.State, r.Reason = RolloutRunning, ""
	return nil
}

// observation is a message RunRollout reacts to.
type observation struct {
	id, kind string
	payload  []byte
}

// RunRollout runs r (NewRollout or a resumed document, running and owned
// by this client) until it is done or halted, or ctx ends (then it stays
// running, to be resumed). It returns the final document; the error is
// for the broker connection, not for failed agents (see State).
func (c *Client) RunRollout(ctx context.Context, r *Rollout, o RolloutOptions) (*Rollout, error) {
	o.fill()
	run := &rolloutRun{c: c, r: r, o: o, inWave: map[string]int{}}
	return run.run(ctx)
}

type rolloutRun struct {
	c *Client
	r *Rollout
	o RolloutOptions

	mu    sync.Mutex
	queue []observation
	wake  chan struct{}

	targets map[string]bool
	inWave  map[string]int // agent -> wave index, for the started waves
	dirty   bool
	saved   time.Time
	shown   time.Time
}

func (run *rolloutRun) push(ob observation) {
	run.mu.Lock()
	run.queue = append(run.queue, ob)
	run.mu.Unlock()
	select {
	case run.wake <- struct{}{}:
	default:
	}
}

func (run *rolloutRun) take() []observation {
	run.mu.Lock()
	defer run.mu.Unlock()
	q := run.queue
	run.queue = nil
	return q
}

func (run *rolloutRun) run(ctx context.Context) (*Rollout, error) {
	c, r := run.c, run.r
	run.wake = make(chan struct{}, 1)
	run.targets = make(map[string]bool, len(r.Agents))
	for _, id := range r.Agents {
		run.targets[id] = true
	}
	for i, w := range r.Waves {
		for _, id := range r.Agents[w.Start : w.Start+w.Size] {
			run.inWave[id] = i
		}
	}
	// The handler only queues: paho's goroutine must not wait for the loop,
	// which waits for paho to acknowledge its publishes.
	handler := func(_ paho.Client, m paho.Message) {
		id, kind, ok := uplink.ParseAgentTopic(c.prefix, m.Topic())
		if !ok || !run.targets[id] {
			return
		}
		if strings.HasPrefix(kind, "reply/") && kind != "reply/"+run.reqID() {
			return
		}
		run.push(observation{id: id, kind: kind, payload: append([]byte(nil), m.Payload()...)})
	}
	replyFilter := c.prefix + "/+/reply/" + run.reqID()
	filters := map[string]byte{
		c.prefix + "/+/status":               1,
		c.prefix + "/+/" + uplink.KindEvents: 1,
		replyFilter:                          1,
	}
	if err := c.subscribe(ctx, filters, handler); err != nil {
		return r, fmt.Errorf("rollout %s: subscribe: %w", r.ID, err)
	}
	defer func() { c.mqtt.Unsubscribe(slices.Collect(maps.Keys(filters))...).WaitTimeout(time.Second) }()

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// A wave in progress (resumed): send what was not sent yet.
	if n := len(r.Waves); n > 0 && r.Waves[n-1].EndedAt == nil {
		if err := run.send(ctx, n-1, true); err != nil {
			return r, err
		}
	}
	for {
		for _, ob := range run.take() {
			run.observe(ob)
		}
		now := run.o.Now()
		run.timeouts(now)
		if f := r.Failures(); r.State == RolloutRunning && f > r.MaxFailures {
			// No further wave; written at once so that other tools see it.
			// The agents of this wave still updating are watched until
			// they end or the wave times out, so that their outcome is
			// recorded.
			r.State = RolloutHalted
			r.Reason = fmt.Sprintf("%d agents failed, more than the %d allowed (--max-failures)", f, r.MaxFailures)
			if err := run.maybeSave(ctx, true); err != nil {
				return r, err
			}
		}
		if r.State == RolloutHalted {
			if run.settle(now) {
				break
			}
		} else if err := run.advance(ctx, now); err != nil {
			return r, err
		}
		if r.State == RolloutDone {
			break
		}
		if err := run.maybeSave(ctx, false); err != nil {
			return r, err
		}
		run.show(false)
		select {
		case <-ctx.Done():
			// Stopped from outside: the document stays as it is (running:
			// to be resumed).
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = run.maybeSave(sctx, true)
			run.show(true)
			return r, nil
		case <-run.wake:
		case <-tick.C:
		}
	}
	if err := run.maybeSave(ctx, true); err != nil {
		return r, err
	}
	run.show(true)
	return r, nil
}

// settle ends the current wave once every agent of it has an outcome
// and tells whether it has (or there is none).
func (run *rolloutRun) settle(now time.Time) bool {
	r := run.r
	n := len(r.Waves)
	if n == 0 || r.Waves[n-1].EndedAt != nil {
		return true
	}
	w := r.Waves[n-1]
	for _, id := range r.Agents[w.Start : w.Start+w.Size] {
		if p, ok := r.Progress[id]; !ok || !p.Terminal() {
			return false
		}
	}
	end := now.UTC()
	r.Waves[n-1].EndedAt = &end
	run.dirty = true
	return true
}

// reqID is the command id of the rollout's agent.update, one for all
// agents: each journals it, so a resend is answered, not run again.
func (run *rolloutRun) reqID() string { return run.r.ID }

// advance ends the current wave when every agent has an outcome and
// starts the next one, or ends the rollout.
func (run *rolloutRun) advance(ctx context.Context, now time.Time) error {
	r := run.r
	if !run.settle(now) {
		return nil
	}
	size := r.nextWaveSize()
	if size == 0 {
		r.State = RolloutDone
		run.dirty = true
		return nil
	}
	start := r.started()
	r.Waves = append(r.Waves, RolloutWave{Start: start, Size: size, StartedAt: now.UTC(), Deadline: now.Add(r.waveTimeout()).UTC()})
	i := len(r.Waves) - 1
	for _, id := range r.Agents[start : start+size] {
		run.inWave[id] = i
		if p, ok := r.Progress[id]; ok && p.Terminal() {
			p.Wave = i // already running the version (noop): nothing to send
			continue
		}
		r.Progress[id] = &RolloutAgent{Wave: i, State: RolloutPending, At: now.UTC()}
	}
	// Written before any command goes out: a resumed rollout knows the wave.
	if err := run.maybeSave(ctx, true); err != nil {
		return err
	}
	return run.send(ctx, i, false)
}

func (r *Rollout) waveTimeout() time.Duration {
	d, err := time.ParseDuration(r.WaveTimeout)
	if err != nil || d <= 0 {
		return 10 * time.Minute
	}
	return d
}

// send publishes agent.update to wave i's agents that have no outcome
// yet (resumed: also those sent before, under the same id).
func (run *rolloutRun) send(ctx context.Context, i int, resumed bool) error {
	r := run.r
	w := r.Waves[i]
	args, _ := json.Marshal(map[string]string{"url": r.URL, "sha256": r.SHA256, "signature": r.Signature, "version": r.Version})
	if r.Version == "" {
		args, _ = json.Marshal(map[string]string{"url": r.URL, "sha256": r.SHA256, "signature": r.Signature})
	}
	deadline := w.Deadline.Truncate(time.Second)
	payload, _ := json.Marshal(uplink.Command{ID: run.reqID(), Args: args, ExpiresAt: &deadline})
	var toks []paho.Token
	var ids []string
	for _, id := range r.Agents[w.Start : w.Start+w.Size] {
		p := r.Progress[id]
		if p == nil {
			p = &RolloutAgent{Wave: i}
			r.Progress[id] = p
		}
		if p.State != RolloutPending && !(resumed && (p.State == RolloutSent)) {
			continue
		}
		toks = append(toks, run.c.mqtt.Publish(run.c.prefix+"/"+id+"/cmd/agent.update", 1, false, payload))
		ids = append(ids, id)
		if len(toks) >= 256 {
			if err := run.published(ctx, ids, toks); err != nil {
				return err
			}
			toks, ids = toks[:0], ids[:0]
		}
	}
	return run.published(ctx, ids, toks)
}

// published waits for the broker to take the commands and marks their
// agents sent.
func (run *rolloutRun) published(ctx context.Context, ids []string, toks []paho.Token) error {
	now := run.o.Now().UTC()
	for k, tok := range toks {
		if err := wait(ctx, tok); err != nil {
			return fmt.Errorf("rollout %s: send to %s: %w", run.r.ID, ids[k], err)
		}
		if p := run.r.Progress[ids[k]]; p.State == RolloutPending {
			p.State, p.At = RolloutSent, now
		}
		run.dirty = true
	}
	return nil
}

// observe applies a reply, an event or a status of a target agent.
func (run *rolloutRun) observe(ob observation) {
	r := run.r
	wave, started := run.inWave[ob.id]
	p := r.Progress[ob.id]
	now := run.o.Now().UTC()
	set := func(state, detail string) {
		if p == nil {
			p = &RolloutAgent{Wave: wave}
			r.Progress[ob.id] = p
		}
		p.State, p.Detail, p.At = state, redact.String(detail), now
		run.dirty = true
	}
	switch {
	case ob.kind == "status":
		var st uplink.Status
		if json.Unmarshal(ob.payload, &st) != nil || st.State != uplink.StateOnline || r.Version == "" || st.Version != r.Version {
			return
		}
		// Running the version: done, whether the event was seen or not.
		// An agent of a later wave already runs it and needs nothing.
		switch {
		case p != nil && p.Terminal():
		case !started:
			wave = -1
			set(RolloutNoop, "already running "+st.Version)
		default:
			set(RolloutCommitted, "status says "+st.Version)
		}
	case strings.HasPrefix(ob.kind, "reply/"):
		if !started || p == nil || p.Terminal() {
			return
		}
		var rep uplink.Reply
		if json.Unmarshal(ob.payload, &rep) != nil {
			return
		}
		switch {
		case !rep.OK && rep.Error != nil:
			set(RolloutFailed, string(rep.Error.Code)+": "+rep.Error.Message)
		case !rep.OK:
			set(RolloutFailed, "refused")
		default:
			var res struct {
				Accepted bool `json:"accepted"`
				Noop     bool `json:"noop"`
			}
			_ = json.Unmarshal(rep.Result, &res)
			if res.Noop {
				set(RolloutNoop, "already running "+r.Version)
			} else if p.State == RolloutPending || p.State == RolloutSent {
				set(RolloutAccepted, "")
			}
		}
	case ob.kind == uplink.KindEvents:
		if !started || p == nil || p.Terminal() || p.State == RolloutPending {
			return
		}
		var ev struct {
			Type   string          `json:"type"`
			TS     time.Time       `json:"ts"`
			Detail json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(ob.payload, &ev) != nil || !strings.HasPrefix(ev.Type, "update.") {
			return
		}
		var d struct {
			Version string `json:"version"`
			Reason  string `json:"reason"`
			Error   string `json:"error"`
			Check   string `json:"check"`
		}
		_ = json.Unmarshal(ev.Detail, &d)
		// An event of another update (an old one flushed from an outbox):
		// with a version, events must name it; without, they must be
		// newer than the wave (less a minute of clock skew).
		if r.Version != "" && d.Version != "" && d.Version != r.Version {
			return
		}
		if r.Version == "" && ev.TS.Before(r.Waves[wave].StartedAt.Add(-time.Minute)) {
			return
		}
		switch ev.Type {
		case uplink.EventUpdateCommitted:
			if r.Version == "" && d.Version != "" {
				r.Version = d.Version // learned: the status check works from now on
			}
			set(RolloutCommitted, d.Version)
		case uplink.EventUpdateRolledBack:
			set(RolloutRolledBack, d.Reason)
		case uplink.EventUpdateFailed:
			detail := d.Error
			if d.Check != "" {
				detail = d.Check + ": " + detail
			}
			set(RolloutFailed, detail)
		}
	}
}

// timeouts ends the current wave's agents without an outcome past its
// deadline.
func (run *rolloutRun) timeouts(now time.Time) {
	r := run.r
	n := len(r.Waves)
	if n == 0 || r.Waves[n-1].EndedAt != nil || now.Before(r.Waves[n-1].Deadline) {
		return
	}
	w := r.Waves[n-1]
	for _, id := range r.Agents[w.Start : w.Start+w.Size] {
		p := r.Progress[id]
		if p == nil {
			p = &RolloutAgent{Wave: n - 1}
			r.Progress[id] = p
		}
		if !p.Terminal() {
			p.Detail = "no outcome within " + r.WaveTimeout + " (was " + p.State + ")"
			p.State, p.At = RolloutTimeout, now.UTC()
			run.dirty = true
		}
	}
}

// maybeSave writes the document when it changed and SaveEvery passed
// (the heartbeat also without changes), or at once with now.
func (run *rolloutRun) maybeSave(ctx context.Context, now bool) error {
	t := run.o.Now()
	if !now && t.Sub(run.saved) < run.o.SaveEvery {
		return nil
	}
	run.r.Heartbeat = t.UTC()
	if err := run.c.SaveRollout(ctx, run.r); err != nil {
		return err
	}
	run.saved, run.dirty = t, false
	return nil
}

func (run *rolloutRun) show(final bool) {
	if run.o.Changed == nil {
		return
	}
	t := run.o.Now()
	if !final && t.Sub(run.shown) < 200*time.Millisecond {
		return
	}
	run.shown = t
	run.o.Changed(run.r.Clone())
}
