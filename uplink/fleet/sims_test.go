package fleet_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// sims runs n simulated agents sim-00 ... on broker until the test ends;
// mod may change each one's options.
type sims struct {
	agents []*sim.Agent
	cancel []context.CancelFunc
	done   []chan struct{}
}

func startSims(t *testing.T, broker string, n int, mod func(i int, o *sim.Options)) *sims {
	t.Helper()
	s := &sims{}
	for i := range n {
		o := sim.Options{
			Broker: broker, ID: fmt.Sprintf("sim-%02d", i), Dir: t.TempDir(), HealthInterval: time.Hour,
			Labels:     map[string]string{"site": fmt.Sprintf("plant-%d", i%2), "line": fmt.Sprint(i % 3)},
			UpdateTime: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			Log: zerolog.Nop(),
		}
		if mod != nil {
			mod(i, &o)
		}
		a, err := sim.New(o)
		if err != nil {
			t.Fatal(err)
		}
		s.agents = append(s.agents, a)
		s.start(t, i)
	}
	t.Cleanup(func() {
		for i := range s.agents {
			s.stop(i)
			_ = s.agents[i].Close()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range s.agents {
		for !a.Connected() {
			if time.Now().After(deadline) {
				t.Fatalf("%s not connected within 15s", a.ID())
			}
			time.Sleep(10 * time.Millisecond) // no event for "connected"; polled with a deadline
		}
	}
	return s
}

func (s *sims) start(t *testing.T, i int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if i < len(s.cancel) {
		s.cancel[i], s.done[i] = cancel, done
	} else {
		s.cancel, s.done = append(s.cancel, cancel), append(s.done, done)
	}
	a := s.agents[i]
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("%s: %v", a.ID(), err)
		}
	}()
}

// stop stops agent i (a clean shutdown: offline status "shutdown").
func (s *sims) stop(i int) {
	s.cancel[i]()
	<-s.done[i]
}

func dial(t *testing.T, b *mqtttest.Broker) *fleet.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := fleet.Dial(ctx, fleet.Options{Broker: b.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// counter counts calls per key, safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}
