package fleet_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
)

var selectorCases = []struct {
	sel     string
	labels  map[string]string
	match   bool
	invalid bool
}{
	{"", nil, true, false},
	{"site=plant-3", map[string]string{"site": "plant-3"}, true, false},
	{"site==plant-3", map[string]string{"site": "plant-3"}, true, false},
	{"site=plant-3", map[string]string{"site": "plant-4"}, false, false},
	{"site=plant-3,line=2", map[string]string{"site": "plant-3", "line": "2"}, true, false},
	{"site=plant-3, line=2", map[string]string{"site": "plant-3", "line": "3"}, false, false},
	{"line!=2", map[string]string{"line": "3"}, true, false},
	{"line!=2", nil, true, false},
	{"line!=2", map[string]string{"line": "2"}, false, false},
	{"canary", map[string]string{"canary": "yes"}, true, false},
	{"canary", nil, false, false},
	{"!canary", nil, true, false},
	{"!canary", map[string]string{"canary": "yes"}, false, false},
	{"site=", nil, false, true},
	{"=x", nil, false, true},
	{"a b=c", nil, false, true},
	{"site=plant 3", nil, false, true},
	{"site=a,,b=c", nil, false, true},
	{"!", nil, false, true},
}

func TestSelector(t *testing.T) {
	for _, c := range selectorCases {
		sel, err := fleet.ParseSelector(c.sel)
		if c.invalid {
			if !errors.Is(err, fleet.ErrBadSelector) {
				t.Errorf("%q: want ErrBadSelector, got %v", c.sel, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.sel, err)
			continue
		}
		if got := sel.Matches(c.labels); got != c.match {
			t.Errorf("%q on %v: %v, want %v", c.sel, c.labels, got, c.match)
		}
	}
}

// FuzzSelector: whatever parses prints as a selector that parses to the
// same thing.
func FuzzSelector(f *testing.F) {
	for _, c := range selectorCases {
		f.Add(c.sel)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := fleet.ParseSelector(s)
		if err != nil {
			return
		}
		again, err := fleet.ParseSelector(sel.String())
		if err != nil || again.String() != sel.String() {
			t.Fatalf("%q -> %q -> %q, %v", s, sel.String(), again.String(), err)
		}
	})
}

func TestTarget(t *testing.T) {
	agents := []fleet.AgentState{
		{ID: "cg-b", HasStatus: true, Status: uplink.Status{Labels: map[string]string{"site": "x"}}},
		{ID: "cg-a", HasStatus: true, Status: uplink.Status{Labels: map[string]string{"site": "y"}}},
		{ID: "cg-c"}, // a desired document only: not an agent seen yet
	}
	ids := func(as []fleet.AgentState) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	sel, _ := fleet.ParseSelector("site=x")
	if got := ids(fleet.Target{Selector: sel}.Select(agents)); !slices.Equal(got, []string{"cg-b"}) {
		t.Fatalf("selector: %v", got)
	}
	if got := ids(fleet.Target{All: true}.Select(agents)); !slices.Equal(got, []string{"cg-a", "cg-b"}) {
		t.Fatalf("all: %v", got)
	}
	if got := ids(fleet.Target{IDs: []string{"cg-new", "cg-a", "cg-a"}}.Select(agents)); !slices.Equal(got, []string{"cg-a", "cg-new"}) {
		t.Fatalf("ids: %v", got)
	}
	for _, bad := range []fleet.Target{{}, {All: true, IDs: []string{"a"}}, {All: true, Selector: sel}, {IDs: []string{"a/b"}}, {IDs: []string{"all"}}} {
		if err := bad.Validate(); !errors.Is(err, fleet.ErrBadSelector) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
