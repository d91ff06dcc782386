package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
)

// Doc is a desired-state document without its version, as read from a
// file: the members paths, labels and config (see the agent's desired
// state). The version is the fleet tool's to set.
type Doc map[string]any

// ParseDesiredFile reads a desired-state document in YAML or JSON (JSON
// is YAML). Members other than paths, labels and config are refused, as
// is a version (PutDesired sets it); label values are turned into strings
// (YAML reads line: 2 as a number) and checked.
func ParseDesiredFile(b []byte) (Doc, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadDesired)
	}
	if raw == nil {
		return nil, fmt.Errorf("the document is empty: %w", ErrBadDesired)
	}
	doc := Doc{}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "paths", "config":
			if v != nil {
				if _, ok := v.(map[string]any); !ok {
					return nil, fmt.Errorf("%s must be a mapping: %w", k, ErrBadDesired)
				}
			}
			doc[k] = v
		case "labels":
			m, ok := v.(map[string]any)
			if v != nil && !ok {
				return nil, fmt.Errorf("labels must be a mapping: %w", ErrBadDesired)
			}
			labels := map[string]string{}
			for lk, lv := range m {
				s := fmt.Sprint(lv)
				if err := uplink.ValidateLabel(lk, s); err != nil {
					return nil, fmt.Errorf("%v: %w", err, ErrBadDesired)
				}
				labels[lk] = s
			}
			doc[k] = labels
		case "version":
			return nil, fmt.Errorf("version is set by the fleet tool, leave it out: %w", ErrBadDesired)
		default:
			return nil, fmt.Errorf("%q is not a member of the desired state (paths, labels, config): %w", k, ErrBadDesired)
		}
	}
	// Round-trip through JSON: what is compared and written is what the
	// agent will read.
	j, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadDesired)
	}
	out := Doc{}
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadDesired)
	}
	return out, nil
}

// DocOf is the document a retained desired state holds, without its
// version; nil for nil.
func DocOf(d *uplink.Desired) Doc {
	if d == nil {
		return nil
	}
	b, _ := json.Marshal(d)
	var out Doc
	_ = json.Unmarshal(b, &out)
	delete(out, "version")
	return out
}

// NextVersion is the version a new desired document for a gets: above
// both the retained desired version and the reported one (an agent may
// have applied a document whose retained copy was since cleared).
func NextVersion(a AgentState) uint64 {
	var v uint64
	if a.Desired != nil {
		v = a.Desired.Version
	}
	if a.Reported != nil {
		v = max(v, a.Reported.Version)
	}
	return v + 1
}

// PutDesired writes doc with version as agent id's retained desired
// state and waits for the broker's acknowledgement.
func (c *Client) PutDesired(ctx context.Context, id string, version uint64, doc Doc) error {
	if err := uplink.ValidateAgentID(id); err != nil {
		return fmt.Errorf("put desired state: %w", err)
	}
	full := maps.Clone(doc)
	if full == nil {
		full = Doc{}
	}
	full["version"] = version
	b, err := json.Marshal(full)
	if err != nil {
		return fmt.Errorf("put desired state of %s: %w", id, err)
	}
	if len(b) > uplink.MaxDesiredBytes {
		return fmt.Errorf("put desired state of %s: %d bytes, the agent takes %d at most: %w", id, len(b), uplink.MaxDesiredBytes, ErrBadDesired)
	}
	topic := c.prefix + "/" + id + "/state/desired"
	if err := wait(ctx, c.mqtt.Publish(topic, 1, true, b)); err != nil {
		return fmt.Errorf("put desired state of %s: %w", id, err)
	}
	return nil
}

// Change is one difference between two desired documents.
type Change struct {
	Op  byte // '+' added, '-' removed, '~' changed
	Key string
	// Old and New are JSON values, URLs redacted.
	Old, New string
}

func (ch Change) String() string {
	switch ch.Op {
	case '+':
		return fmt.Sprintf("+ %s: %s", ch.Key, ch.New)
	case '-':
		return fmt.Sprintf("- %s: %s", ch.Key, ch.Old)
	}
	return fmt.Sprintf("~ %s: %s -> %s", ch.Key, ch.Old, ch.New)
}

// Diff lists what changes from cur to next, key by key (paths.cam1.source,
// labels.line, config.uplink.healthInterval), sorted by key. A member
// absent from a document is compared as absent: writing next without
// paths leaves the agent's fleet paths as they are, and the diff shows no
// path change for it.
func Diff(cur, next Doc) []Change {
	a, b := map[string]string{}, map[string]string{}
	flatten("", map[string]any(cur), a)
	flatten("", map[string]any(next), b)
	var out []Change
	for k, ov := range a {
		nv, ok := b[k]
		switch {
		case !ok:
			out = append(out, Change{Op: '-', Key: k, Old: ov})
		case nv != ov:
			out = append(out, Change{Op: '~', Key: k, Old: ov, New: nv})
		}
	}
	for k, nv := range b {
		if _, ok := a[k]; !ok {
			out = append(out, Change{Op: '+', Key: k, New: nv})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// flatten writes the leaves of v as dotted keys; an empty object is a
// leaf ({} paths means "no fleet path").
func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for k, e := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, e, out)
		}
		return
	}
	if m, ok := v.(Doc); ok {
		flatten(prefix, map[string]any(m), out)
		return
	}
	if prefix == "" {
		return
	}
	b, _ := json.Marshal(v)
	out[prefix] = redact.String(string(b))
}

// Convergence is one agent's desired version against its reported one.
type Convergence struct {
	ID       string              `json:"id"`
	Desired  uint64              `json:"desired"`  // 0: no desired document retained
	Reported uint64              `json:"reported"` // 0: nothing reported
	OK       bool                `json:"ok"`       // the report says every entry was applied
	Errors   []uplink.StateError `json:"errors,omitempty"`
	Online   bool                `json:"online"`
}

// ConvergenceOf reads a's retained documents.
func ConvergenceOf(a AgentState) Convergence {
	c := Convergence{ID: a.ID, Online: a.Online()}
	if a.Desired != nil {
		c.Desired = a.Desired.Version
	}
	if a.Reported != nil {
		c.Reported, c.OK, c.Errors = a.Reported.Version, a.Reported.OK, a.Reported.Errors
	}
	return c
}

// State is "converged", "errors" (applied with errors), "pending" (the
// agent has not applied the desired version yet; "pending (offline)"
// while its status says offline), "ahead" (the agent applied a newer
// version than the one retained now) or "none" (no desired document).
func (c Convergence) State() string {
	switch {
	case c.Desired == 0:
		return "none"
	case c.Reported == c.Desired && c.OK:
		return "converged"
	case c.Reported == c.Desired:
		return "errors"
	case c.Reported > c.Desired:
		return "ahead"
	case !c.Online:
		return "pending (offline)"
	}
	return "pending"
}

// Converged tells whether the agent applied the desired version without
// errors.
func (c Convergence) Converged() bool { return c.State() == "converged" }

// WaitReported waits until every agent in want has reported at least its
// version, or ctx ends, and returns the reports seen (the newest per
// agent). progress, when set, is called after each agent gets there.
func (c *Client) WaitReported(ctx context.Context, want map[string]uint64, progress func(done, total int)) (map[string]uplink.Reported, error) {
	var mu sync.Mutex
	got := map[string]uplink.Reported{}
	left := len(want)
	done := make(chan struct{})
	if left == 0 {
		close(done)
	}
	handler := func(_ paho.Client, m paho.Message) {
		id, kind, ok := uplink.ParseAgentTopic(c.prefix, m.Topic())
		if !ok || kind != "state/reported" {
			return
		}
		v, wanted := want[id]
		var r uplink.Reported
		if !wanted || json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		mu.Lock()
		prev, seen := got[id]
		if seen && prev.Version > r.Version {
			mu.Unlock()
			return
		}
		got[id] = r
		arrived := r.Version >= v && (!seen || prev.Version < v)
		if arrived {
			left--
		}
		n := len(want) - left
		last := arrived && left == 0
		mu.Unlock()
		if arrived && progress != nil {
			progress(n, len(want))
		}
		if last {
			close(done)
		}
	}
	filter := c.prefix + "/+/state/reported"
	if err := c.subscribe(ctx, map[string]byte{filter: 1}, handler); err != nil {
		return nil, fmt.Errorf("wait for reports: %w", err)
	}
	defer func() { c.mqtt.Unsubscribe(filter).WaitTimeout(time.Second) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("wait for reports: %d of %d agents have not reported: %w", left, len(want), ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(got), err
}
