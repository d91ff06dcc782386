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
// payload, to be parsed and answered by the dispatcher.
type Incoming struct {
	Name      string
	Broadcast bool // came on P/all/cmd/NAME
	Payload   []byte
	Received  time.Time
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
	// ConnectTimeout bounds one connect attempt; default 10s.
	ConnectTimeout time.Duration
	// KeepAlive is the MQTT keep-alive; default 30s.
	KeepAlive time.Duration
	// StopTimeout bounds a stop: two thirds for flushing the outbox, the
	// rest (at least 1s) for the shutdown status; default 3s.
	StopTimeout time.Duration
	// CommandQueue is the capacity of Commands(); default 64. Commands
	// arriving while it is full are dropped and counted (the fleet repeats
	// the id and gets the journaled reply or a fresh run).
	CommandQueue int

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
		o.CommandQueue = 64
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
	Connected       bool
	Connects        uint64 // successful connects since start
	Published       uint64 // outbox messages acknowledged by the broker
	CommandsDropped uint64 // commands dropped because Commands() was full
}

// Client is the agent's MQTT uplink. Create it with New and run it with Run.
type Client struct {
	opts   Options
	topics Topics
	mqtt   paho.Client
	log    zerolog.Logger
	cmds   chan Incoming
	lost   chan error
	dial   dialer
	// desired holds the newest desired document not yet taken (Desired).
	desired chan []byte
	labels  atomic.Pointer[map[string]string]
	// birthMu orders the birth messages of a session and of SetLabels.
	birthMu sync.Mutex

	running         atomic.Bool
	connected       atomic.Bool
	connects        atomic.Uint64
	published       atomic.Uint64
	commandsDropped atomic.Uint64
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
		return nil, fmt.Errorf("new uplink %s: %w", redact.URL(opts.Broker), err)
	}
	c := &Client{
		opts:   opts,
		topics: topics,
		log:    opts.Logger.With().Str("component", "uplink").Logger(),
		cmds:   make(chan Incoming, opts.CommandQueue),
		lost:   make(chan error, 1),

		desired: make(chan []byte, 1),
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

// Commands delivers received commands. It is never closed; read it in a
// select with your context.
func (c *Client) Commands() <-chan Incoming { return c.cmds }

// Connected tells whether a session is up (subscribed, birth published).
func (c *Client) Connected() bool { return c.connected.Load() }

// Stats returns the client's figures.
func (c *Client) Stats() Stats {
	return Stats{
		Connected:       c.connected.Load(),
		Connects:        c.connects.Load(),
		Published:       c.published.Load(),
		CommandsDropped: c.commandsDropped.Load(),
	}
}

// onCommand runs on paho's goroutine: copy and hand off, never block.
func (c *Client) onCommand(_ paho.Client, m paho.Message) {
	name, broadcast, ok := c.topics.CmdName(m.Topic())
	if !ok {
		return
	}
	in := Incoming{Name: name, Broadcast: broadcast, Payload: append([]byte(nil), m.Payload()...), Received: c.opts.Now()}
	select {
	case c.cmds <- in:
	default:
		c.commandsDropped.Add(1)
		c.log.Warn().Str("cmd", name).Msg("command queue full, command dropped")
	}
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
	bo := newBackoff(c.opts.MinBackoff, c.opts.MaxBackoff)
	broker := redact.URL(c.opts.Broker)
	for {
		start := time.Now()
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			bo.reset() // a session that lasted is not a failing broker
		}
		wait := bo.next()
		c.log.Warn().Str("broker", broker).Str("error", redact.Error(err)).Dur("retryIn", wait).Msg("broker unavailable")
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
	c.connects.Add(1)
	// Connected from here: the birth below must not be seen before
	// Connected says so.
	c.connected.Store(true)
	defer c.connected.Store(false)
	if err := c.subscribe(ctx); err != nil {
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
func (c *Client) subscribe(ctx context.Context) error {
	// A refused filter fails the session (retried with backoff), except the
	// 0x91 "packet identifier in use" some brokers answer while a queued
	// command to us holds the same id: that is retried at once.
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
