package fleet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

const fakeSig = "untrusted comment: signature\nRWQ...\ntrusted comment: x\nabc\n"

func plan(ids []string, mod func(*fleet.RolloutPlan)) fleet.RolloutPlan {
	p := fleet.RolloutPlan{
		ID: "r-test", URL: "https://example.invalid/camgate", SHA256: "00", Signature: fakeSig, Version: "v2.0.0",
		Target: "--all", Agents: ids, Canary: 1, Growth: 2, WaveTimeout: 20 * time.Second,
	}
	if mod != nil {
		mod(&p)
	}
	return p
}

func simIDs(s *sims) []string {
	var ids []string
	for _, a := range s.Agents {
		ids = append(ids, a.ID())
	}
	return ids
}

// TestRolloutHaltsOnFailures: waves of 1, 2, 4, 5; three agents of the
// third wave fail or roll back, more than the one failure allowed: the
// rollout halts by itself in that wave (whose outcomes are still
// recorded), the fourth wave's agents are never asked. Resumed with a
// higher limit it finishes.
func TestRolloutHaltsOnFailures(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	s := startSims(t, b.URL(), 12, func(i int, o *sim.Options) {
		if i == 5 || i == 6 {
			o.Outcome = func(string) sim.Outcome { return sim.RolledBack }
		}
		if i == 4 {
			o.Outcome = func(string) sim.Outcome { return sim.Failed }
		}
	})
	c := dial(t, b)
	ctx := tctx(t)
	r, err := fleet.NewRollout(plan(simIDs(s), func(p *fleet.RolloutPlan) { p.MaxFailures = 1 }), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.TakeRollout(r, time.Now(), time.Minute, false); err != nil {
		t.Fatal(err)
	}
	var shown int
	r, err = c.RunRollout(ctx, r, fleet.RolloutOptions{SaveEvery: 100 * time.Millisecond, Changed: func(*fleet.Rollout) { shown++ }})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != fleet.RolloutHalted || len(r.Waves) != 3 || r.Failures() < 2 || shown == 0 {
		t.Fatalf("state %s (%s), %d waves, %d failures", r.State, r.Reason, len(r.Waves), r.Failures())
	}
	for i, want := range []int{1, 2, 4} {
		if r.Waves[i].Size != want {
			t.Fatalf("wave %d has %d agents, want %d", i+1, r.Waves[i].Size, want)
		}
	}
	// The wave under way when it halted is watched to its end.
	for id, want := range map[string]string{"sim-04": fleet.RolloutFailed, "sim-05": fleet.RolloutRolledBack, "sim-06": fleet.RolloutRolledBack, "sim-03": fleet.RolloutCommitted} {
		if p := r.Progress[id]; p.State != want || (p.Failure() && p.Detail == "") {
			t.Fatalf("%s: %+v, want %s", id, p, want)
		}
	}
	if r.Waves[2].EndedAt == nil {
		t.Fatal("the halted wave has no end")
	}
	for i, a := range s.Agents {
		switch {
		case i < 3 && a.Version() != "v2.0.0":
			t.Fatalf("%s runs %s after its wave", a.ID(), a.Version())
		case i >= 7 && (a.Updates() != 0 || a.Version() != "v1.0.0"):
			t.Fatalf("%s of the fourth wave was updated: %d updates, %s", a.ID(), a.Updates(), a.Version())
		}
	}
	// The retained document says the same.
	saved, err := c.LoadRollout(ctx, "r-test")
	if err != nil || saved.State != fleet.RolloutHalted || len(saved.Waves) != 3 {
		t.Fatalf("retained document: %+v %v", saved, err)
	}

	saved.MaxFailures = 5
	if err := c.TakeRollout(saved, time.Now(), time.Minute, false); err != nil {
		t.Fatal(err)
	}
	r, err = c.RunRollout(ctx, saved, fleet.RolloutOptions{SaveEvery: 100 * time.Millisecond})
	if err != nil || r.State != fleet.RolloutDone || len(r.Waves) != 4 || r.Waves[3].Size != 5 {
		t.Fatalf("resumed: %v %+v", err, r)
	}
	for i, a := range s.Agents {
		if i != 4 && i != 5 && i != 6 && a.Version() != "v2.0.0" {
			t.Fatalf("%s runs %s", a.ID(), a.Version())
		}
		if a.Updates() > 1 {
			t.Fatalf("%s updated %d times", a.ID(), a.Updates())
		}
	}
}

// TestRolloutResumesAfterInterruption: the tool running a rollout stops in
// the middle of a wave; another tool is refused while the heartbeat is
// fresh, takes over with force, and finishes; no agent updates twice and
// agents already on the version are not asked.
func TestRolloutResumesAfterInterruption(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	s := startSims(t, b.URL(), 8, func(i int, o *sim.Options) {
		o.UpdateTime = 300 * time.Millisecond
		if i == 7 {
			o.Version = "v2.0.0" // already there
		}
	})
	c1 := dial(t, b)
	ctx := tctx(t)
	r, err := fleet.NewRollout(plan(simIDs(s), nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_ = c1.TakeRollout(r, time.Now(), time.Minute, false)
	rctx, stop := context.WithCancel(ctx)
	_, err = c1.RunRollout(rctx, r, fleet.RolloutOptions{SaveEvery: 100 * time.Millisecond, Changed: func(r *fleet.Rollout) {
		if len(r.Waves) == 2 {
			stop() // interrupted in the second wave
		}
	}})
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	c1.Close()

	c2 := dial(t, b)
	saved, err := c2.LoadRollout(ctx, "r-test")
	if err != nil || saved.State != fleet.RolloutRunning || len(saved.Waves) < 2 {
		t.Fatalf("saved: %v %+v", err, saved)
	}
	if err := c2.TakeRollout(saved, time.Now(), time.Minute, false); !errors.Is(err, fleet.ErrRolloutOwned) {
		t.Fatalf("take over a fresh rollout: %v", err)
	}
	if err := c2.TakeRollout(saved, time.Now(), time.Minute, true); err != nil {
		t.Fatal(err)
	}
	r, err = c2.RunRollout(ctx, saved, fleet.RolloutOptions{SaveEvery: 100 * time.Millisecond})
	if err != nil || r.State != fleet.RolloutDone || r.Failures() != 0 {
		t.Fatalf("resumed: %v %s %s failures %d", err, r.State, r.Reason, r.Failures())
	}
	for i, a := range s.Agents {
		want := 1
		if i == 7 {
			want = 0
		}
		if a.Version() != "v2.0.0" || a.Updates() != want {
			t.Fatalf("%s: %s after %d updates, want %d", a.ID(), a.Version(), a.Updates(), want)
		}
	}
	if p := r.Progress["sim-07"]; p.State != fleet.RolloutNoop {
		t.Fatalf("sim-07: %+v", p)
	}
	if _, err := c2.LoadRollout(ctx, "r-none"); !errors.Is(err, fleet.ErrNoRollout) {
		t.Fatalf("unknown rollout: %v", err)
	}
	list, err := c2.Rollouts(ctx)
	if err != nil || len(list) != 1 || list[0].State != fleet.RolloutDone {
		t.Fatalf("rollouts: %v %+v", err, list)
	}
}
