package fleet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// TestSharedSubscription: two watchers in one share group split the
// health of the fleet: each message goes to one of them.
func TestSharedSubscription(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	ctx := tctx(t)
	var chans []<-chan fleet.Msg
	for range 2 {
		c, err := fleet.Dial(ctx, fleet.Options{Broker: b.URL(), ShareGroup: "health"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		ch, stop, err := c.Subscribe(ctx, "+", 10000)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		chans = append(chans, ch)
	}
	startSims(t, b.URL(), 4, func(_ int, o *sim.Options) { o.HealthInterval = 50 * time.Millisecond })
	seen := map[string]int{}
	per := [2]int{}
	deadline := time.After(15 * time.Second)
	for per[0] < 20 || per[1] < 20 {
		select {
		case m := <-chans[0]:
			count(t, seen, &per[0], m)
		case m := <-chans[1]:
			count(t, seen, &per[1], m)
		case <-deadline:
			t.Fatalf("after 15s: %v health messages per watcher", per)
		}
	}
	if _, err := fleet.Dial(context.Background(), fleet.Options{Broker: b.URL(), ShareGroup: "a/b"}); err == nil {
		t.Fatal("share group with a slash accepted")
	}
}

func count(t *testing.T, seen map[string]int, n *int, m fleet.Msg) {
	t.Helper()
	if m.Kind != uplink.KindHealth {
		return
	}
	k := fmt.Sprintf("%s/%d", m.AgentID, m.Seq)
	if seen[k]++; seen[k] > 1 {
		t.Fatalf("health %s delivered to both watchers", k)
	}
	*n++
}
