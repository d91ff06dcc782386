package uplink

import (
	"fmt"
	"strings"
)

// Outbox kinds: the topic below P/ID/ an outbox message is published on.
const (
	KindHealth = "health"
	KindEvents = "events"
)

// BroadcastID is the id segment that addresses every agent.
const BroadcastID = "all"

// Topics builds the topic names of one agent.
type Topics struct {
	Prefix string // P
	ID     string // agent id
}

// NewTopics checks prefix and id and returns their topics.
func NewTopics(prefix, id string) (Topics, error) {
	if prefix == "" || strings.ContainsAny(prefix, "+#") || strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
		return Topics{}, fmt.Errorf("topic prefix %q: %w", prefix, ErrBadTopic)
	}
	if id == "" || id == BroadcastID || strings.ContainsAny(id, "+#/") {
		return Topics{}, fmt.Errorf("agent id %q: %w", id, ErrBadTopic)
	}
	return Topics{Prefix: prefix, ID: id}, nil
}

func (t Topics) base() string { return t.Prefix + "/" + t.ID + "/" }

// Status is P/ID/status (retained).
func (t Topics) Status() string { return t.base() + "status" }

// Kind is P/ID/<kind> for outbox kinds.
func (t Topics) Kind(kind string) string { return t.base() + kind }

// Health is P/ID/health.
func (t Topics) Health() string { return t.Kind(KindHealth) }

// Events is P/ID/events.
func (t Topics) Events() string { return t.Kind(KindEvents) }

// Reply is P/ID/reply/REQID.
func (t Topics) Reply(reqID string) string { return t.base() + "reply/" + reqID }

// Cmd is P/ID/cmd/NAME.
func (t Topics) Cmd(name string) string { return t.base() + "cmd/" + name }

// CmdFilter is P/ID/cmd/+.
func (t Topics) CmdFilter() string { return t.base() + "cmd/+" }

// BroadcastCmdFilter is P/all/cmd/+.
func (t Topics) BroadcastCmdFilter() string { return t.Prefix + "/" + BroadcastID + "/cmd/+" }

// CmdName returns NAME of a P/ID/cmd/NAME or P/all/cmd/NAME topic and
// whether it was the broadcast form.
func (t Topics) CmdName(topic string) (name string, broadcast, ok bool) {
	if rest, found := strings.CutPrefix(topic, t.base()+"cmd/"); found && rest != "" && !strings.Contains(rest, "/") {
		return rest, false, true
	}
	if rest, found := strings.CutPrefix(topic, t.Prefix+"/"+BroadcastID+"/cmd/"); found && rest != "" && !strings.Contains(rest, "/") {
		return rest, true, true
	}
	return "", false, false
}

// ParseAgentTopic splits P/ID/REST for fleet-side subscriptions on P/+/...
func ParseAgentTopic(prefix, topic string) (id, rest string, ok bool) {
	s, found := strings.CutPrefix(topic, prefix+"/")
	if !found {
		return "", "", false
	}
	id, rest, ok = strings.Cut(s, "/")
	return id, rest, ok && id != ""
}
