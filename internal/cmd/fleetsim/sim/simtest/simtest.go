// Package simtest runs simulated agents (package sim) for tests of the
// fleet side: started on a broker, stopped and closed at test cleanup.
package simtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
)

// Fleet is n simulated agents sim-00, sim-01, ... with the labels
// site=plant-(i%2) and line=(i%3), health every hour (tests ask for it),
// updates of 50ms and quick reconnects.
type Fleet struct {
	tb     testing.TB
	Agents []*sim.Agent
	cancel []context.CancelFunc
	done   []chan struct{}
}

// Start runs the agents on broker until the test ends and returns once
// all are connected; mod may change each one's options.
func Start(tb testing.TB, broker string, n int, mod func(i int, o *sim.Options)) *Fleet {
	tb.Helper()
	f := &Fleet{tb: tb, cancel: make([]context.CancelFunc, n), done: make([]chan struct{}, n)}
	for i := range n {
		o := sim.Options{
			Broker: broker, ID: fmt.Sprintf("sim-%02d", i), Dir: tb.TempDir(), HealthInterval: time.Hour,
			Labels:     map[string]string{"site": fmt.Sprintf("plant-%d", i%2), "line": fmt.Sprint(i % 3)},
			UpdateTime: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			Log: zerolog.Nop(),
		}
		if mod != nil {
			mod(i, &o)
		}
		a, err := sim.New(o)
		if err != nil {
			tb.Fatal(err)
		}
		f.Agents = append(f.Agents, a)
	}
	for i := range f.Agents {
		f.Start(i)
	}
	tb.Cleanup(func() {
		for i, a := range f.Agents {
			f.Stop(i)
			_ = a.Close()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range f.Agents {
		for !a.Connected() {
			if time.Now().After(deadline) {
				tb.Fatalf("%s not connected within 15s", a.ID())
			}
			time.Sleep(10 * time.Millisecond) // no event for "connected": polled with a deadline
		}
	}
	return f
}

// Start runs agent i (again).
func (f *Fleet) Start(i int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f.cancel[i], f.done[i] = cancel, done
	a := f.Agents[i]
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			f.tb.Errorf("%s: %v", a.ID(), err)
		}
	}()
}

// Stop stops agent i cleanly (offline status "shutdown"); a stopped
// agent is not stopped again.
func (f *Fleet) Stop(i int) {
	if f.cancel[i] == nil {
		return
	}
	f.cancel[i]()
	<-f.done[i]
	f.cancel[i] = nil
}

// IDs are the agent ids in order.
func (f *Fleet) IDs() []string {
	out := make([]string, len(f.Agents))
	for i, a := range f.Agents {
		out[i] = a.ID()
	}
	return out
}
