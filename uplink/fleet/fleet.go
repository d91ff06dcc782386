package fleet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
)

// Options configure Dial. Zero values take the defaults in the comments.
type Options struct {
	// Broker is tcp://, ssl://, ws:// or wss://; required.
	Broker   string
	Username string
	Password string
	// CAFile, CertFile, KeyFile: PEM files for TLS; TLSConfig overrides them.
	CAFile, CertFile, KeyFile string
	TLSConfig                 *tls.Config
	// TopicPrefix is P; default "camgate".
	TopicPrefix string
	// ClientID default "camgate-fleet-<random>".
	ClientID string
	// ConnectTimeout default 10s.
	ConnectTimeout time.Duration
	// ShareGroup, when set, makes Subscribe and Watch use MQTT shared
	// subscriptions ($share/GROUP/P/+/health ...): the broker hands each
	// message to one member of the group, so several fleet consumers
	// split the load of a large fleet. Mosquitto 2, EMQX, HiveMQ, VerneMQ
	// and AWS IoT Core support it, for MQTT 3.1.1 clients too. Default:
	// plain subscriptions.
	ShareGroup string
}

// Client is a connected fleet-side client.
type Client struct {
	mqtt     paho.Client
	prefix   string
	clientID string
	share    string
	seq      atomic.Uint64 // names the snapshot markers
}

// Dial connects (clean session, no retries: it is a short-lived tool).
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.TopicPrefix == "" {
		opts.TopicPrefix = "camgate"
	}
	if opts.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.ClientID = "camgate-fleet-" + hex.EncodeToString(b[:])
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	po := paho.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID(opts.ClientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(opts.ConnectTimeout)
	if opts.Username != "" {
		po.SetUsername(opts.Username)
		po.SetPassword(opts.Password)
	}
	u, err := url.Parse(opts.Broker)
	if err != nil {
		return nil, fmt.Errorf("dial %q: bad broker url", redact.URL(opts.Broker))
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "wss":
		cfg := opts.TLSConfig
		if cfg == nil {
			if cfg, err = uplink.LoadTLS(opts.CAFile, opts.CertFile, opts.KeyFile); err != nil {
				return nil, fmt.Errorf("dial: %w", err)
			}
		}
		po.SetTLSConfig(cfg)
	}
	if strings.ContainsAny(opts.ShareGroup, "/+#") {
		return nil, fmt.Errorf("dial: share group %q: no '/', '+' or '#'", opts.ShareGroup)
	}
	c := &Client{mqtt: paho.NewClient(po), prefix: opts.TopicPrefix, clientID: opts.ClientID, share: opts.ShareGroup}
	tok := c.mqtt.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		<-tok.Done()
		c.mqtt.Disconnect(0)
		return nil, fmt.Errorf("dial %q: %w", redact.URL(opts.Broker), ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("dial %q: %w", redact.URL(opts.Broker), redact.Err(err))
	}
	return c, nil
}

// Close disconnects.
func (c *Client) Close() { c.mqtt.Disconnect(250) }

// Msg is one message seen by Watch.
type Msg struct {
	AgentID  string
	Kind     string // status, health, events, reply/REQID
	Seq      uint64 // health and events; 0 otherwise
	Payload  []byte
	Retained bool
}

// Subscribe subscribes to status, health and events of agent id ("+" for
// all), shared with the group of Options.ShareGroup if set, and returns once the broker acknowledged the subscription. Messages
// arrive on the channel in arrival order (buffer bounded by depth, default
// 4096; a full buffer holds up the connection's reader, which is the
// back-pressure a fleet tool wants). stop unsubscribes; the channel is not
// closed.
func (c *Client) Subscribe(ctx context.Context, id string, depth int) (<-chan Msg, func(), error) {
	if depth <= 0 {
		depth = 4096
	}
	msgs := make(chan Msg, depth)
	done := make(chan struct{})
	handler := func(_ paho.Client, m paho.Message) {
		aid, kind, ok := uplink.ParseAgentTopic(c.prefix, m.Topic())
		if !ok {
			return
		}
		msg := Msg{AgentID: aid, Kind: kind, Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained()}
		if kind == uplink.KindHealth || kind == uplink.KindEvents {
			var s struct {
				Seq uint64 `json:"seq"`
			}
			_ = json.Unmarshal(msg.Payload, &s)
			msg.Seq = s.Seq
		}
		select {
		case msgs <- msg:
		case <-done:
		}
	}
	filters := map[string]byte{}
	keys := []string{}
	for _, k := range []string{"status", uplink.KindHealth, uplink.KindEvents} {
		f := c.prefix + "/" + id + "/" + k
		if c.share != "" {
			f = "$share/" + c.share + "/" + f
		}
		filters[f] = 1
		keys = append(keys, f)
	}
	if err := c.subscribe(ctx, filters, handler); err != nil {
		return nil, nil, fmt.Errorf("subscribe %s: %w", id, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(done)
			c.mqtt.Unsubscribe(keys...).WaitTimeout(time.Second)
		})
	}
	return msgs, stop, nil
}

// Watch calls fn for each message Subscribe delivers until ctx ends or fn
// returns an error.
func (c *Client) Watch(ctx context.Context, id string, fn func(Msg) error) error {
	msgs, stop, err := c.Subscribe(ctx, id, 0)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			if err := fn(m); err != nil {
				return err
			}
		}
	}
}

// Agent is one agent seen by Agents.
type Agent struct {
	ID         string
	Status     uplink.Status
	LastHealth time.Time // when a health message was last seen; zero if none
}

// Agents collects the retained status of every agent, plus health seen
// during listen, and returns them sorted by id.
func (c *Client) Agents(ctx context.Context, listen time.Duration) ([]Agent, error) {
	lctx, cancel := context.WithTimeout(ctx, listen)
	defer cancel()
	var mu sync.Mutex
	agents := map[string]*Agent{}
	get := func(id string) *Agent {
		if a, ok := agents[id]; ok {
			return a
		}
		a := &Agent{ID: id}
		agents[id] = a
		return a
	}
	err := c.Watch(lctx, "+", func(m Msg) error {
		mu.Lock()
		defer mu.Unlock()
		switch m.Kind {
		case "status":
			var st uplink.Status
			if json.Unmarshal(m.Payload, &st) == nil {
				get(m.AgentID).Status = st
			}
		case uplink.KindHealth:
			get(m.AgentID).LastHealth = time.Now()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Agent, 0, len(agents))
	for _, a := range agents {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Status returns the retained status of one agent.
func (c *Client) Status(ctx context.Context, id string) (uplink.Status, error) {
	got := make(chan []byte, 1)
	topic := c.prefix + "/" + id + "/status"
	err := c.subscribe(ctx, map[string]byte{topic: 1}, func(_ paho.Client, m paho.Message) {
		select {
		case got <- append([]byte(nil), m.Payload()...):
		default:
		}
	})
	if err != nil {
		return uplink.Status{}, fmt.Errorf("status %s: %w", id, err)
	}
	defer func() { c.mqtt.Unsubscribe(topic).WaitTimeout(time.Second) }()
	// Retained messages follow the SUBACK at once; a short grace suffices.
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case p := <-got:
		var st uplink.Status
		if err := json.Unmarshal(p, &st); err != nil {
			return uplink.Status{}, fmt.Errorf("status %s: %w", id, err)
		}
		return st, nil
	case <-t.C:
		return uplink.Status{}, fmt.Errorf("status %s: %w", id, ErrNoStatus)
	case <-ctx.Done():
		return uplink.Status{}, fmt.Errorf("status %s: %w", id, ctx.Err())
	}
}

// NewID returns a fresh command id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Command sends NAME with args to agent id under a fresh command id and
// waits for the reply until ctx ends.
func (c *Client) Command(ctx context.Context, id, name string, args json.RawMessage) (uplink.Reply, error) {
	return c.Send(ctx, id, name, uplink.Command{ID: NewID(), Args: args})
}

// Send publishes cmd as given (tests use it to repeat an id or set
// expiresAt) and waits for the reply.
func (c *Client) Send(ctx context.Context, id, name string, cmd uplink.Command) (uplink.Reply, error) {
	payload, err := json.Marshal(cmd)
	if err != nil {
		return uplink.Reply{}, fmt.Errorf("command %s: %w", name, err)
	}
	raw, err := c.SendRaw(ctx, id, name, cmd.ID, payload)
	if err != nil {
		return uplink.Reply{}, err
	}
	var r uplink.Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return uplink.Reply{}, fmt.Errorf("command %s: decode reply: %w", name, err)
	}
	return r, nil
}

// SendRaw publishes payload on P/ID/cmd/NAME and returns the raw payload
// of P/ID/reply/REQID.
func (c *Client) SendRaw(ctx context.Context, id, name, reqID string, payload []byte) ([]byte, error) {
	if strings.ContainsAny(reqID, "+#/") || reqID == "" {
		return nil, fmt.Errorf("command %s: unusable id %q", name, reqID)
	}
	got := make(chan []byte, 1)
	replyTopic := c.prefix + "/" + id + "/reply/" + reqID
	err := c.subscribe(ctx, map[string]byte{replyTopic: 1}, func(_ paho.Client, m paho.Message) {
		select {
		case got <- append([]byte(nil), m.Payload()...):
		default:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("command %s: subscribe reply: %w", name, err)
	}
	defer func() { c.mqtt.Unsubscribe(replyTopic).WaitTimeout(time.Second) }()
	if err := c.Publish(ctx, c.prefix+"/"+id+"/cmd/"+name, payload); err != nil {
		return nil, fmt.Errorf("command %s: %w", name, err)
	}
	select {
	case p := <-got:
		return p, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("command %s: %w", name, ErrNoReply)
	}
}

// Publish sends payload on topic with QoS 1 (tests use it for garbage).
func (c *Client) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := wait(ctx, c.mqtt.Publish(topic, 1, false, payload)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// subscribe subscribes and checks the SUBACK: a broker may refuse a filter
// (ACL: 0x80) or, like some brokers do while a QoS 1 delivery to us holds
// the same packet id, answer 0x91; those are retried with a fresh id.
func (c *Client) subscribe(ctx context.Context, filters map[string]byte, h paho.MessageHandler) error {
	var err error
	for range 5 {
		tok := c.mqtt.SubscribeMultiple(filters, h)
		if err = wait(ctx, tok); err != nil {
			return err
		}
		if err = subackError(tok); err == nil {
			return nil
		}
	}
	return err
}

// subackError reports a refused filter of a completed subscribe token.
func subackError(tok paho.Token) error {
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	for filter, code := range st.Result() {
		if code >= 0x80 {
			return fmt.Errorf("broker refused %s (code 0x%02x)", filter, code)
		}
	}
	return nil
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
