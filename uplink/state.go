package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Desired is the retained document on P/ID/state/desired: what the fleet
// wants the agent to run. The members other than Version are kept raw:
// the agent decodes them strictly, and a member that is absent (not
// managed by this document) differs from an empty one ({} paths: no
// fleet-managed path at all).
type Desired struct {
	// Version increases with every change the fleet writes; the agent
	// ignores a document whose version is below the one it applied.
	Version uint64 `json:"version"`
	// Paths is the whole fleet-managed path set, as paths.set takes it.
	Paths json.RawMessage `json:"paths,omitempty"`
	// Labels are added to agent.labels (keys the config file sets stay).
	Labels json.RawMessage `json:"labels,omitempty"`
	// Config is the part of the configuration the fleet may change.
	Config json.RawMessage `json:"config,omitempty"`
}

// Reported is the retained document on P/ID/state/reported: the outcome
// of the last desired document the agent applied.
type Reported struct {
	Version   uint64    `json:"version"`
	AppliedAt time.Time `json:"appliedAt"`
	// OK is true when every entry was applied.
	OK bool `json:"ok"`
	// Errors are the entries that were not applied; never null.
	Errors []StateError `json:"errors"`
}

// StateError is one entry of a desired document that was not applied.
type StateError struct {
	// Key names the entry: "paths.cam1", "labels.site",
	// "config.uplink.healthInterval"; "" for the whole document.
	Key     string    `json:"key"`
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

// MaxDesiredBytes bounds a desired document; a larger one is refused
// (reported as too_large), as commands are.
const MaxDesiredBytes = MaxCommandBytes

// MaxLabelLen bounds a label key or value in bytes.
const MaxLabelLen = 63

// ValidateLabel checks one label: key and value are 1 to MaxLabelLen
// characters among letters, digits and "_ - . /", so that a selector
// (site=plant-3,line!=2) can always name them. The errors wrap
// ErrBadLabel.
func ValidateLabel(key, value string) error {
	if err := checkLabelText(key); err != nil {
		return fmt.Errorf("label key %q: %w", key, err)
	}
	if err := checkLabelText(value); err != nil {
		return fmt.Errorf("label %s value %q: %w", key, value, err)
	}
	return nil
}

func checkLabelText(s string) error {
	if s == "" || len(s) > MaxLabelLen {
		return fmt.Errorf("want 1 to %d characters: %w", MaxLabelLen, ErrBadLabel)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == '/'
		if !ok {
			return fmt.Errorf("%q is not a letter, digit, _ - . or /: %w", r, ErrBadLabel)
		}
	}
	return nil
}

// Desired delivers the desired documents received on P/ID/state/desired,
// the newest only: a document not yet taken is replaced by a newer one.
// The broker sends the retained document after every connect, so it
// comes again on each session. An empty (cleared) retained message is
// not delivered. The channel is never closed.
func (c *Client) Desired() <-chan []byte { return c.desired }

// onDesired runs on paho's goroutine: copy and hand off, never block.
// It is the only sender on c.desired, so after emptying the channel the
// send cannot fail. The message is acknowledged at once: the document is
// retained and comes again with the next session if it is lost here.
func (c *Client) onDesired(_ paho.Client, m paho.Message) {
	defer m.Ack()
	if len(m.Payload()) == 0 {
		return
	}
	p := append([]byte(nil), m.Payload()...)
	select {
	case <-c.desired:
	default:
	}
	select {
	case c.desired <- p:
	default:
	}
}

// SetLabels changes the labels of the status and republishes it when
// connected. The last will keeps the labels the client connected with
// until the next connect (paho sets the will once, in New).
func (c *Client) SetLabels(ctx context.Context, labels map[string]string) error {
	l := maps.Clone(labels)
	c.labels.Store(&l)
	if !c.Connected() {
		return nil
	}
	if err := waitToken(ctx, c.publishBirth(), c.opts.ConnectTimeout); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	return nil
}

// currentLabels are the labels of the status; nil when there are none.
func (c *Client) currentLabels() map[string]string {
	if l := c.labels.Load(); l != nil && len(*l) > 0 {
		return *l
	}
	return nil
}

// publishBirth publishes the birth with the labels of the moment. The
// lock makes the order of publishing that of reading the labels, so the
// retained status ends with the newest labels.
func (c *Client) publishBirth() paho.Token {
	c.birthMu.Lock()
	defer c.birthMu.Unlock()
	birth, _ := json.Marshal(c.onlineStatus())
	return c.mqtt.Publish(c.topics.Status(), 1, true, birth)
}

// onlineStatus is the birth message.
func (c *Client) onlineStatus() Status {
	now := c.opts.Now().UTC()
	started := c.opts.StartedAt.UTC()
	return Status{State: StateOnline, Version: c.opts.Version, BootID: c.opts.BootID, StartedAt: &started, TS: &now, Labels: c.currentLabels()}
}

// PublishReported publishes payload, a Reported document, retained on
// P/ID/state/reported and waits for the broker's acknowledgement.
func (c *Client) PublishReported(ctx context.Context, payload []byte) error {
	if !c.mqtt.IsConnectionOpen() {
		return fmt.Errorf("publish reported state: %w", ErrNotConnected)
	}
	if err := waitToken(ctx, c.mqtt.Publish(c.topics.Reported(), 1, true, payload), 10*time.Second); err != nil {
		return fmt.Errorf("publish reported state: %w", err)
	}
	return nil
}
