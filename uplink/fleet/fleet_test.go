package fleet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAgentsStatusAndSend(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := fleet.Dial(ctx, fleet.Options{Broker: b.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two agents' retained status, one health seen while listening.
	if err := b.Server.Publish("camgate/cg-b/status", []byte(`{"state":"offline","reason":"lost"}`), true, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Server.Publish("camgate/cg-a/status", []byte(`{"state":"online","version":"v1"}`), true, 1); err != nil {
		t.Fatal(err)
	}
	// Health is not retained: publish it throughout the listening window.
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = b.Server.Publish("camgate/cg-a/health", []byte(`{"seq":1}`), false, 1)
			}
		}
	}()
	agents, err := c.Agents(ctx, 500*time.Millisecond)
	close(stop)
	<-published
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 2 || agents[0].ID != "cg-a" || agents[0].Status.State != "online" || agents[0].LastHealth.IsZero() ||
		agents[1].ID != "cg-b" || agents[1].Status.Reason != "lost" || !agents[1].LastHealth.IsZero() {
		t.Fatalf("agents %+v", agents)
	}
	st, err := c.Status(ctx, "cg-a")
	if err != nil || st.Version != "v1" {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := c.Status(ctx, "cg-none"); !errors.Is(err, fleet.ErrNoStatus) {
		t.Fatalf("status of an unknown agent: %v", err)
	}
	if _, err := c.SendRaw(ctx, "cg-a", "ping", "a/b", []byte(`{}`)); err == nil {
		t.Fatal("id with a slash accepted")
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := c.Command(short, "cg-a", "ping", nil); !errors.Is(err, fleet.ErrNoReply) {
		t.Fatalf("command nobody answers: %v", err)
	}
	if a, b := fleet.NewID(), fleet.NewID(); a == b {
		t.Fatal("ids repeat")
	}
}

func TestDialFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := fleet.Dial(ctx, fleet.Options{Broker: "tcp://u:pw@" + mqtttest.FreeAddr(t)})
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if s := err.Error(); len(s) == 0 || contains(s, ":pw@") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
