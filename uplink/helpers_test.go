package uplink_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// mochi's inline client and paho's timers may take a moment after Close.
		goleak.IgnoreAnyFunction("github.com/mochi-mqtt/server/v2.(*Server).eventLoop"),
	)
}

// storeOutbox adapts the bbolt store to uplink.Outbox, as the agent does.
type storeOutbox struct{ s *store.Store }

func (o storeOutbox) Pending(after uint64, max int) ([]uplink.Message, error) {
	msgs, err := o.s.OutboxAfter(after, max)
	out := make([]uplink.Message, len(msgs))
	for i, m := range msgs {
		out[i] = uplink.Message{Seq: m.Seq, Kind: m.Kind, Payload: m.Payload}
	}
	return out, err
}
func (o storeOutbox) Acked(seqs ...uint64) error { return o.s.DeleteOutbox(seqs...) }
func (o storeOutbox) Appended() <-chan struct{}  { return o.s.OutboxSignal() }

// runClient runs c until the test ends and checks Run's result.
func runClient(t *testing.T, c *uplink.Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newClient(t *testing.T, broker string, ob uplink.Outbox, mod func(*uplink.Options)) *uplink.Client {
	t.Helper()
	o := uplink.Options{
		Broker: broker, AgentID: "cg-test", Version: "1.2.3", BootID: "7",
		Outbox: ob, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		StopTimeout: 3 * time.Second, Logger: testLogger(t),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := uplink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testLogger(t *testing.T) zerolog.Logger {
	if os.Getenv("UPLINK_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t))
	}
	return zerolog.Nop()
}

func dialFleet(t *testing.T, broker string) *fleet.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := fleet.Dial(ctx, fleet.Options{Broker: broker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// watch subscribes the fleet client to agent id until the test ends.
func watch(t *testing.T, f *fleet.Client, id string) <-chan fleet.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, stop, err := f.Subscribe(ctx, id, 100000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ch
}

// waitStatus reads ch until a status with state (and reason) arrives.
func waitStatus(t *testing.T, ch <-chan fleet.Msg, state, reason string) uplink.Status {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.Kind != "status" {
				continue
			}
			var st uplink.Status
			if err := json.Unmarshal(m.Payload, &st); err != nil {
				t.Fatalf("status payload %q: %v", m.Payload, err)
			}
			if st.State == state && st.Reason == reason {
				return st
			}
		case <-deadline:
			t.Fatalf("no status %s/%s within 15s", state, reason)
		}
	}
}

func dialFleetAuth(t *testing.T, broker, user, pass string) *fleet.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := fleet.Dial(ctx, fleet.Options{Broker: broker, Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func dialFleetTLS(t *testing.T, broker, ca, cert, key string) *fleet.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := fleet.Dial(ctx, fleet.Options{Broker: broker, CAFile: ca, CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}
