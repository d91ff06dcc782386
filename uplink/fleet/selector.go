package fleet

import (
	"fmt"
	"slices"
	"strings"

	"github.com/camgate/camgate/uplink"
)

// Selector picks agents by their labels: requirements separated by
// commas, all of which must hold.
//
//	site=plant-3        the label site is plant-3 (also site==plant-3)
//	line!=2             the label line is not 2 (or the agent has no line)
//	canary              the agent has the label canary
//	!canary             the agent has no label canary
//
// The empty selector matches every agent.
type Selector struct {
	reqs []requirement
}

type selOp int

const (
	opEq selOp = iota + 1
	opNe
	opExists
	opAbsent
)

type requirement struct {
	key, value string
	op         selOp
}

// ParseSelector parses a selector; keys and values follow the label rule
// of uplink.ValidateLabel. The errors wrap ErrBadSelector.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	if strings.TrimSpace(s) == "" {
		return sel, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		var r requirement
		switch {
		case strings.Contains(part, "!="):
			r.key, r.value, _ = strings.Cut(part, "!=")
			r.op = opNe
		case strings.Contains(part, "=="):
			r.key, r.value, _ = strings.Cut(part, "==")
			r.op = opEq
		case strings.Contains(part, "="):
			r.key, r.value, _ = strings.Cut(part, "=")
			r.op = opEq
		case strings.HasPrefix(part, "!"):
			r.key, r.op = part[1:], opAbsent
		default:
			r.key, r.op = part, opExists
		}
		r.key, r.value = strings.TrimSpace(r.key), strings.TrimSpace(r.value)
		value := r.value
		if r.op == opExists || r.op == opAbsent {
			value = "x" // no value to check
		}
		if err := uplink.ValidateLabel(r.key, value); err != nil {
			return Selector{}, fmt.Errorf("selector %q: %v: %w", part, err, ErrBadSelector)
		}
		sel.reqs = append(sel.reqs, r)
	}
	return sel, nil
}

// Empty tells whether the selector has no requirement.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Matches tells whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.reqs {
		v, ok := labels[r.key]
		switch r.op {
		case opEq:
			if !ok || v != r.value {
				return false
			}
		case opNe:
			if ok && v == r.value {
				return false
			}
		case opExists:
			if !ok {
				return false
			}
		case opAbsent:
			if ok {
				return false
			}
		}
	}
	return true
}

// String is the selector in its parsed form.
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		switch r.op {
		case opEq:
			parts[i] = r.key + "=" + r.value
		case opNe:
			parts[i] = r.key + "!=" + r.value
		case opExists:
			parts[i] = r.key
		case opAbsent:
			parts[i] = "!" + r.key
		}
	}
	return strings.Join(parts, ",")
}

// Target says which agents an operation is for: every agent with a
// retained status (All), those whose labels match Selector, or the agents
// named in IDs (known to the broker or not: a desired document can be
// written for a box that has not connected yet). Exactly one of the three
// is set.
type Target struct {
	All      bool
	Selector Selector
	IDs      []string
}

// Validate checks that exactly one way of choosing is set and that the
// ids can be topic levels.
func (t Target) Validate() error {
	n := 0
	if t.All {
		n++
	}
	if !t.Selector.Empty() {
		n++
	}
	if len(t.IDs) > 0 {
		n++
	}
	if n != 1 {
		return fmt.Errorf("choose agents by ids, by -l SELECTOR or with --all (one of them): %w", ErrBadSelector)
	}
	for _, id := range t.IDs {
		if err := uplink.ValidateAgentID(id); err != nil {
			return fmt.Errorf("%v: %w", err, ErrBadSelector)
		}
	}
	return nil
}

// String describes the target for tables and documents.
func (t Target) String() string {
	switch {
	case t.All:
		return "--all"
	case !t.Selector.Empty():
		return "-l " + t.Selector.String()
	}
	return strings.Join(t.IDs, ",")
}

// Select returns the agents of the inventory the target picks, sorted by
// id. Named ids the broker knows nothing of are returned with only their
// ID set.
func (t Target) Select(agents []AgentState) []AgentState {
	var out []AgentState
	switch {
	case len(t.IDs) > 0:
		byID := make(map[string]AgentState, len(agents))
		for _, a := range agents {
			byID[a.ID] = a
		}
		seen := map[string]bool{}
		for _, id := range t.IDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			a, ok := byID[id]
			if !ok {
				a = AgentState{ID: id}
			}
			out = append(out, a)
		}
	default:
		for _, a := range agents {
			if !a.HasStatus {
				continue // desired or reported only: not an agent seen yet
			}
			if t.All || t.Selector.Matches(a.Status.Labels) {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, func(a, b AgentState) int { return strings.Compare(a.ID, b.ID) })
	return out
}
