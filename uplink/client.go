package uplink

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/redact"
)

// Message is one outbox message. Kind is the topic below P/ID/.
type Message struct {
	Seq     uint64
	Kind    string
	Payload []byte
}

// Outbox is the durable queue the drainer empties. The agent satisfies it
// with its bbolt store.
type Outbox interface {
	// Pending returns up to max messages with a seq above after, in seq order.
	Pending(after uint64, max int) ([]Message, error)
	// Acked deletes messages the broker has acknowledged; unknown seqs are
	// ignored.
	Acked(seqs ...uint64) error
	// Appended receives a value after messages were appended (coalesced).
	Appended() <-chan struct{}
}

// Incoming is a command as received: the name from the topic and the raw
// payload, to be parsed and answered by the dispatcher, which then calls
// Ack.
type Incoming struct {
	Name      string
	Broadcast bool // came on P/all/cmd/NAME
	Payload   []byte
	Received  time.Time
	// Redelivered is the DUP flag: the broker sent it before, in this
	// session or an earlier one, and had no acknowledgement.
	Redelivered bool

	acks *ackSet
}

// Ack acknowledges the command to the broker (PUBACK). Until then the
// broker keeps it and sends it again on the next session (QoS 1, clean
// session off), so call Ack only once the command's outcome is safe: its
// reply journaled and published, or the command refused for good. Ack may
// wait for the connection's writer; an Ack for a command of a connection
// that is gone does nothing (the broker sends the command again). Safe to
// call more than once.
func (in Incoming) Ack() {
	if in.acks != nil {
		in.acks.fire()
	}
}

// Options configure New. Zero values take the defaults in the comments.
type Options struct {
	// Broker is tcp://host:port, ssl://, ws:// or wss://; required.
	Broker   string
	Username string
	Password string
	// CAFile, CertFile and KeyFile are PEM files for TLS brokers; empty CA
	// means the system roots. TLSConfig, when set, is used instead.
	CAFile, CertFile, KeyFile string
	TLSConfig                 *tls.Config

	// TopicPrefix is P; default "camgate".
	TopicPrefix string
	// AgentID is ID and the MQTT client id; required.
	AgentID string
	// Version, BootID and StartedAt go into the birth message.
	Version   string
	BootID    string
	StartedAt time.Time // default: when New was called
	// Labels go into the birth, the last will and the shutdown status
	// (SetLabels changes them); none by default.
	Labels map[string]string

	// Outbox is drained while connected; nil disables draining.
	Outbox Outbox
	// InFlight is the most outbox messages published and not yet
	// acknowledged; default 32.
	InFlight int

	// MinBackoff and MaxBackoff bound the reconnect wait; default 1s, 60s.
	MinBackoff, MaxBackoff time.Duration
	// StableSession is how long a session must have lasted for its loss
	// to start a fresh outage (the next attempt after MinBackoff) rather
	// than one more failure of a broker that keeps dropping us right after
	// the connect (the wait doubles); default 10s.
	StableSession time.Duration
	// ConnectTimeout bounds one connect attempt; default 10s.
	ConnectTimeout time.Duration
	// KeepAlive is the MQTT keep-alive; default 30s.
	KeepAlive time.Duration
	// StopTimeout bounds a stop: two thirds for flushing the outbox, the
	// rest (at least 1s) for the shutdown status; default 3s.
	StopTimeout time.Duration
	// CommandQueue is how many received commands may wait to be run;
	// default 256. Commands arriving while it is full are handed to Busy()
	// to be answered busy (not run). A broker's in-flight window holds the
	// rest back while commands wait unacknowledged (mosquitto: 20, though
	// 2.0 lets more through while the client publishes); mochi sends
	// everything at once.
	CommandQueue int
	// BusyQueue is how many commands may wait for their busy reply;
	// default 4096.
	BusyQueue int
	// CommandBytes bounds the payload bytes held in both queues; default
	// 16 MiB. A command that fits in neither queue is left unacknowledged
	// with the broker, which sends it again once the queues have drained
	// and the client has reconnected.
	CommandBytes int

	Logger zerolog.Logger
	Now    func() time.Time // default time.Now
}

func (o *Options) fill() {
	if o.TopicPrefix == "" {
		o.TopicPrefix = "camgate"
	}
	if o.InFlight <= 0 {
		o.InFlight = 32
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 60 * time.Second
	}
	if o.StableSession <= 0 {
		o.StableSession = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 3 * time.Second
	}
	if o.CommandQueue <= 0 {
		o.CommandQueue = 256
	}
	if o.BusyQueue <= 0 {
		o.BusyQueue = 4096
	}
	if o.CommandBytes <= 0 {
		o.CommandBytes = 16 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StartedAt.IsZero() {
		o.StartedAt = o.Now()
	}
}

// Stats are the client's figures for health and /metrics.
type Stats struct {
	Connected        bool
	Connects         uint64 // successful connects since start
	Published        uint64 // outbox messages acknowledged by the broker
	CommandsQueued   int    // commands waiting to be taken from Commands() or Busy()
	CommandsBusy     uint64 // commands handed to Busy() because the queue was full
	CommandsDeferred uint64 // commands left with the broker for a later session
	// LastPublished is when the broker last acknowledged an outbox
	// message; zero before the first.
	LastPublished time.Time
}

// Client is the agent's MQTT uplink. Create it with New and run it with Run.
type Client struct {
	opts   Options
	topics Topics
	mqtt   paho.Client
	log    zerolog.Logger
	cmds   chan Incoming
	busy   chan Incoming
	inbox  *inbox
	lost   chan error
	// redeliver asks the session to reconnect so that the broker resends
	// the commands left with it (see inbox).
	redeliver chan struct{}
	dial      dialer
	// overflowLogged is when overflowed last logged (paho's goroutine only).
	overflowLogged time.Time
	// desired holds the newest desired document not yet taken (Desired).
	desired chan []byte
	labels  atomic.Pointer[map[string]string]
	// birthMu orders the birth messages of a session and of SetLabels.
	birthMu sync.Mutex

	// up is closed while a session is up and replaced when it ends
	// (WaitConnected).
	upMu sync.Mutex
	up   chan struct{}

	running          atomic.Bool
	connected        atomic.Bool
	connects         atomic.Uint64
	published        atomic.Uint64
	commandsBusy     atomic.Uint64
	commandsDeferred atomic.Uint64
	lastPublished    atomic.Int64 // unix nanoseconds; 0: never
}

// New checks the options and prepares the client; it does not connect.
func New(opts Options) (*Client, error) {
	opts.fill()
	topics, err := NewTopics(opts.TopicPrefix, opts.AgentID)
	if err != nil {
		return nil, fmt.Errorf("new uplink: %w", err)
	}
	secure, err := brokerScheme(opts.Broker)
	if err != nil {
		return nil, fmt.Errorf("new uplink %q: %w", redact.URL(opts.Broker), err)
	}
	c := &Client{
		opts:   opts,
		topics: topics,
		log:    opts.Logger.With().Str("component", "uplink").Logger(),
		// Unbuffered: the inbox is the queue, so its bounds are the
		// real ones.
		cmds:      make(chan Incoming),
		busy:      make(chan Incoming),
		inbox:     newInbox(opts.CommandQueue, opts.BusyQueue, opts.CommandBytes),
		lost:      make(chan error, 1),
		redeliver: make(chan struct{}, 1),
		up:        make(chan struct{}),
		desired:   make(chan []byte, 1),
	}
	labels := maps.Clone(opts.Labels)
	c.labels.Store(&labels)
	will, _ := json.Marshal(Status{State: StateOffline, Reason: ReasonLost, Labels: c.currentLabels()})
	po := paho.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID(opts.AgentID).
		SetProtocolVersion(4). // MQTT 3.1.1
		SetCleanSession(false).
		SetAutoReconnect(false). // Run owns reconnection, with its backoff
		SetConnectRetry(false).
		SetResumeSubs(true).
		// Commands are acknowledged by the agent once handled (Incoming.Ack),
		// so the broker keeps what the agent has not taken on.
		SetAutoAckDisabled(true).
		SetKeepAlive(opts.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(opts.ConnectTimeout).
		SetWriteTimeout(10*time.Second).
		SetBinaryWill(topics.Status(), will, 1, true).
		SetConnectionLostHandler(c.onLost).
		SetCustomOpenConnectionFn(c.dial.open)
	if opts.Username != "" {
		po.SetUsername(opts.Username)
		po.SetPassword(opts.Password)
	}
	if secure {
		cfg := opts.TLSConfig
		if cfg == nil {
			if cfg, err = LoadTLS(opts.CAFile, opts.CertFile, opts.KeyFile); err != nil {
				return nil, fmt.Errorf("new uplink: %w", err)
			}
		}
		po.SetTLSConfig(cfg)
	}
	c.mqtt = paho.NewClient(po)
	// Routes exist before the first connect: with a persistent session the
	// broker may deliver queued commands right after CONNACK, before our
	// SUBSCRIBE is even sent.
	c.mqtt.AddRoute(topics.CmdFilter(), c.onCommand)
	c.mqtt.AddRoute(topics.BroadcastCmdFilter(), c.onCommand)
	c.mqtt.AddRoute(topics.Desired(), c.onDesired)
	return c, nil
}

// Topics returns the agent's topic names.
func (c *Client) Topics() Topics { return c.topics }

// Commands delivers received commands to run, in arrival order, while Run
// runs. It is never closed; read it in a select with your context. Each
// must be acknowledged with Ack once handled.
func (c *Client) Commands() <-chan Incoming { return c.cmds }

// Busy delivers commands that arrived while CommandQueue commands were
// waiting: answer each with a busy error (not run, not journaled as
// final: the fleet may send the same id again) and Ack it.
func (c *Client) Busy() <-chan Incoming { return c.busy }

// Connected tells whether a session is up (subscribed, birth published).
func (c *Client) Connected() bool { return c.connected.Load() }

// WaitConnected returns nil once a session is up (at once if one is), or
// ctx's error.
func (c *Client) WaitConnected(ctx context.Context) error {
	c.upMu.Lock()
	up := c.up
	c.upMu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setUp marks the session up or down for WaitConnected.
func (c *Client) setUp(up bool) {
	c.upMu.Lock()
	defer c.upMu.Unlock()
	select {
	case <-c.up:
		if !up {
			c.up = make(chan struct{})
		}
	default:
		if up {
			close(c.up)
		}
	}
}

// Stats returns the client's figures.
func (c *Client) Stats() Stats {
	return Stats{
		Connected:        c.connected.Load(),
		Connects:         c.connects.Load(),
		Published:        c.published.Load(),
		CommandsQueued:   c.inbox.len(),
		CommandsBusy:     c.commandsBusy.Load(),
		CommandsDeferred: c.commandsDeferred.Load(),
		LastPublished:    unixNanoTime(c.lastPublished.Load()),
	}
}

func unixNanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// onCommand runs on paho's goroutine, which also reads the broker's
// acknowledgements of our publishes: copy and queue, never block.
func (c *Client) onCommand(_ paho.Client, m paho.Message) {
	name, broadcast, ok := c.topics.CmdName(m.Topic())
	if !ok {
		m.Ack() // not a command topic: nothing will ever handle it
		return
	}
	in := Incoming{Name: name, Broadcast: broadcast, Payload: append([]byte(nil), m.Payload()...),
		Received: c.opts.Now(), Redelivered: m.Duplicate()}
	switch c.inbox.put(in, m) {
	case placedBusy:
		c.commandsBusy.Add(1)
		c.overflowed(in.Received)
	case placedDeferred:
		c.commandsDeferred.Add(1)
		c.overflowed(in.Received)
	}
}

// overflowed logs, at most once a minute, that commands arrive faster than
// they are run. Only paho's callback goroutine calls it.
func (c *Client) overflowed(now time.Time) {
	if now.Sub(c.overflowLogged) < time.Minute {
		return
	}
	c.overflowLogged = now
	c.log.Warn().Int("queue", c.opts.CommandQueue).Uint64("busyTotal", c.commandsBusy.Load()).
		Uint64("deferredTotal", c.commandsDeferred.Load()).
		Msg("commands arrive faster than they run: the excess is answered busy, or left with the broker")
}

// onLost runs on a paho goroutine.
func (c *Client) onLost(_ paho.Client, err error) {
	select {
	case c.lost <- err:
	default:
	}
}

// Run connects, keeps reconnecting with backoff and jitter, drains the
// outbox while connected, and on ctx's end flushes what it can within
// StopTimeout, publishes the "shutdown" status and disconnects. It returns
// nil after ctx ends; it must be called once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan struct{})
	go func() { defer close(fdone); c.forward(fctx) }()
	defer func() { fcancel(); <-fdone }()
	bo := newBackoff(c.opts.MinBackoff, c.opts.MaxBackoff)
	broker := redact.URL(c.opts.Broker)
	// An outage is told once at warn level; its further failed attempts go
	// to debug. A box with no fleet yet (the default broker address and
	// nothing listening) would otherwise warn every minute forever. A
	// session that came up ends the outage: the next loss warns again.
	warned := false
	connects := c.connects.Load()
	for {
		start := time.Now()
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRedeliver) {
			continue // at once: the broker is fine
		}
		if time.Since(start) >= c.opts.StableSession {
			// A session that lasted is not a failing broker: a link or
			// broker blip gets a prompt retry, whatever came before.
			bo.reset()
		}
		if n := c.connects.Load(); n != connects {
			connects, warned = n, false
		}
		wait := bo.next()
		ev, msg := c.log.Debug(), "broker unavailable"
		if !warned {
			warned = true
			ev = c.log.Warn()
			if connects == 0 {
				msg = "broker unavailable; retrying in the background, further attempts logged at debug level until it connects"
			} else {
				msg = "broker connection lost; retrying in the background, further attempts logged at debug level until it connects"
			}
		}
		ev.Str("broker", broker).Str("error", redact.Error(err)).Dur("retryIn", wait.Round(time.Millisecond)).Msg(msg)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session is one connection: connect, subscribe, birth, drain until the
// connection is lost or ctx ends.
func (c *Client) session(ctx context.Context) error {
	select {
	case <-c.lost: // a stale loss from the previous session
	default:
	}
	select {
	case <-c.redeliver: // asked for by the previous session
	default:
	}
	c.dial.arm(ctx)
	tok := c.mqtt.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		<-tok.Done() // prompt: the dialer closes the pending connection
		if tok.Error() == nil {
			c.mqtt.Disconnect(100)
		}
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	c.dial.established()
	c.inbox.newSession()
	c.connects.Add(1)
	// Connected from here: the birth below must not be seen before
	// Connected says so.
	c.connected.Store(true)
	defer c.connected.Store(false)
	c.setUp(true)
	defer c.setUp(false)
	present := false
	if ct, ok := tok.(*paho.ConnectToken); ok {
		present = ct.SessionPresent()
	}
	if err := c.subscribe(ctx, present); err != nil {
		if ctx.Err() != nil {
			// Stopped right after connecting: the birth may be out, and
			// a clean disconnect sends no will, so say offline.
			c.shutdown()
			return ctx.Err()
		}
		c.mqtt.Disconnect(100)
		return err
	}
	c.log.Info().Str("broker", redact.URL(c.opts.Broker)).Str("clientId", c.opts.AgentID).Msg("connected to broker")

	// The drain gets its own context: on ctx's end it first flushes (it
	// watches ctx.Done as "stopping"), and is cancelled only when the
	// connection is lost.
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.drain(dctx, ctx.Done()) }()
	select {
	case err := <-c.lost:
		cancel()
		<-done
		return fmt.Errorf("connection lost: %w", err)
	case <-c.redeliver:
		cancel()
		<-done
		c.log.Info().Msg("reconnecting: the broker resends the commands left with it")
		c.mqtt.Disconnect(250)
		return errRedeliver
	case err := <-done:
		if ctx.Err() != nil {
			if err != nil {
				c.log.Warn().Str("error", redact.Error(err)).Msg("outbox not flushed before stop")
			}
			c.shutdown()
			return ctx.Err()
		}
		c.mqtt.Disconnect(250)
		return fmt.Errorf("drain outbox: %w", err)
	}
}

// subscribe subscribes to the command topics and publishes the birth.
// It runs on Run's goroutine right after CONNACK, which is what paho's
// OnConnect would do, but it can wait for the broker and fail the session.
// present is CONNACK's session-present flag.
func (c *Client) subscribe(ctx context.Context, present bool) error {
	// A refused filter fails the session (retried with backoff), except the
	// 0x91 "packet identifier in use" some brokers answer while a queued
	// command to us holds the same id: that is retried at once. Some
	// (mochi, to MQTT 3.1.1 clients) answer 0x80 for the same reason; with
	// commands left unacknowledged every id of the retries may be taken.
	// When the broker resumed our session the refusal is harmless: the
	// subscriptions are part of the session (MQTT 3.1.1 §3.1.2.4).
	filters := map[string]byte{c.topics.CmdFilter(): 1, c.topics.BroadcastCmdFilter(): 1, c.topics.Desired(): 1}
	for attempt := 0; ; attempt++ {
		sub := c.mqtt.SubscribeMultiple(filters, nil)
		if err := waitToken(ctx, sub, c.opts.ConnectTimeout); err != nil {
			return fmt.Errorf("subscribe commands: %w", err)
		}
		code := subackCode(sub)
		if code < 0x80 {
			break
		}
		if present {
			c.log.Debug().Str("code", fmt.Sprintf("0x%02x", code)).Msg("re-subscribe refused; the resumed session keeps its subscriptions")
			break
		}
		if code != 0x91 || attempt == 4 {
			return fmt.Errorf("subscribe commands: broker refused (code 0x%02x)", code)
		}
	}
	if err := waitToken(ctx, c.publishBirth(), c.opts.ConnectTimeout); err != nil {
		return fmt.Errorf("publish birth: %w", err)
	}
	return nil
}

// shutdown publishes the clean offline status and disconnects.
func (c *Client) shutdown() {
	budget := max(c.opts.StopTimeout/3, time.Second)
	now := c.opts.Now().UTC()
	off, _ := json.Marshal(Status{State: StateOffline, Reason: ReasonShutdown, Version: c.opts.Version, BootID: c.opts.BootID, TS: &now, Labels: c.currentLabels()})
	if err := waitToken(context.Background(), c.mqtt.Publish(c.topics.Status(), 1, true, off), budget); err != nil {
		c.log.Warn().Str("error", redact.Error(err)).Msg("shutdown status not published")
	}
	c.mqtt.Disconnect(250)
	c.log.Info().Msg("disconnected from broker")
}

// Reply publishes a command reply on P/ID/reply/REQID and waits for the
// broker's acknowledgement.
func (c *Client) Reply(ctx context.Context, reqID string, payload []byte) error {
	if !c.mqtt.IsConnectionOpen() {
		return fmt.Errorf("reply %s: %w", reqID, ErrNotConnected)
	}
	if err := waitToken(ctx, c.mqtt.Publish(c.topics.Reply(reqID), 1, false, payload), 10*time.Second); err != nil {
		return fmt.Errorf("reply %s: %w", reqID, err)
	}
	return nil
}

// subackCode is the worst return code of a completed subscribe token.
func subackCode(tok paho.Token) byte {
	var worst byte
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for _, code := range st.Result() {
			worst = max(worst, code)
		}
	}
	return worst
}

// waitToken waits for tok, ctx or timeout.
func waitToken(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("timed out waiting for the broker")
	}
}
