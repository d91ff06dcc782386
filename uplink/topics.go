package uplink

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
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
	if err := ValidateTopicPrefix(prefix); err != nil {
		return Topics{}, err
	}
	if err := ValidateAgentID(id); err != nil {
		return Topics{}, err
	}
	return Topics{Prefix: prefix, ID: id}, nil
}

// MaxAgentIDLen bounds an agent id in bytes: it is the MQTT client id too,
// and 128 is the longest AWS IoT Core takes.
const MaxAgentIDLen = 128

// ValidateAgentID checks that id can be one MQTT topic level and the
// client id: not empty, not the broadcast id "all", no '/', '+' or '#',
// UTF-8 without control characters (MQTT forbids NUL), at most
// MaxAgentIDLen bytes. The errors wrap ErrBadTopic.
func ValidateAgentID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("agent id is empty: %w", ErrBadTopic)
	case id == BroadcastID:
		return fmt.Errorf("agent id %q is the id that addresses every agent: %w", id, ErrBadTopic)
	case len(id) > MaxAgentIDLen:
		return fmt.Errorf("agent id is %d bytes, at most %d: %w", len(id), MaxAgentIDLen, ErrBadTopic)
	case strings.ContainsAny(id, "/+#"):
		return fmt.Errorf("agent id %q: '/', '+' and '#' cannot be in an MQTT topic level: %w", id, ErrBadTopic)
	}
	return checkTopicText("agent id", id)
}

// ValidateTopicPrefix checks the topic prefix: not empty, no wildcards,
// no '/' at either end, not starting with '$' (brokers keep those topics
// for themselves), UTF-8 without control characters. The errors wrap
// ErrBadTopic.
func ValidateTopicPrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("topic prefix is empty: %w", ErrBadTopic)
	case strings.ContainsAny(prefix, "+#"):
		return fmt.Errorf("topic prefix %q: MQTT wildcards '+' and '#' cannot be in a topic name: %w", prefix, ErrBadTopic)
	case strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/"):
		return fmt.Errorf("topic prefix %q: no '/' at the start or the end: %w", prefix, ErrBadTopic)
	case strings.HasPrefix(prefix, "$"):
		return fmt.Errorf("topic prefix %q: topics starting with '$' are the broker's: %w", prefix, ErrBadTopic)
	}
	return checkTopicText("topic prefix", prefix)
}

func checkTopicText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8: %w", what, ErrBadTopic)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q: control character %U: %w", what, s, r, ErrBadTopic)
		}
	}
	return nil
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

// Desired is P/ID/state/desired (retained, written by the fleet).
func (t Topics) Desired() string { return t.base() + "state/desired" }

// Reported is P/ID/state/reported (retained, written by the agent).
func (t Topics) Reported() string { return t.base() + "state/reported" }

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

// RolloutTopic is P/all/rollout/ID, the retained progress document of a
// staged rollout. It lives under the broadcast id, which no agent can
// have, so it never collides with an agent's topics; agents subscribe to
// P/all/cmd/+ only and never see it.
func RolloutTopic(prefix, id string) string { return prefix + "/" + BroadcastID + "/rollout/" + id }

// ParseAgentTopic splits P/ID/REST for fleet-side subscriptions on P/+/...
func ParseAgentTopic(prefix, topic string) (id, rest string, ok bool) {
	s, found := strings.CutPrefix(topic, prefix+"/")
	if !found {
		return "", "", false
	}
	id, rest, ok = strings.Cut(s, "/")
	return id, rest, ok && id != ""
}
