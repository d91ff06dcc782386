package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/internal/cmd/fleetsim/sim/simtest"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// sims wraps simtest.Fleet with the names these tests use.
type sims struct{ *simtest.Fleet }

func startSims(t *testing.T, broker string, n int, mod func(i int, o *sim.Options)) *sims {
	t.Helper()
	return &sims{simtest.Start(t, broker, n, mod)}
}

func (s *sims) stop(i int)                { s.Stop(i) }
func (s *sims) start(_ *testing.T, i int) { s.Start(i) }

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
