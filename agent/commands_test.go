package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// fleetSide is a raw MQTT client standing in for a busy fleet manager: it
// publishes commands without waiting for each reply and records every
// reply, in arrival order.
type fleetSide struct {
	mqtt paho.Client
	mu   sync.Mutex
	got  []uplink.Reply
	diag func(missing []string)
}

func newFleetSide(t *testing.T, broker, agentID string) *fleetSide {
	t.Helper()
	f := &fleetSide{}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID("fleet-" + agentID).SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(false)
	f.mqtt = paho.NewClient(o)
	if tok := f.mqtt.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet connect: %v", tok.Error())
	}
	t.Cleanup(func() { f.mqtt.Disconnect(100) })
	tok := f.mqtt.Subscribe("camgate/"+agentID+"/reply/+", 1, func(_ paho.Client, m paho.Message) {
		var r uplink.Reply
		if err := json.Unmarshal(m.Payload(), &r); err != nil {
			t.Errorf("reply %q: %v", m.Payload(), err)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, r)
		f.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet subscribe: %v", tok.Error())
	}
	return f
}

// send publishes every payload on P/ID/cmd/NAME, all at once, and waits
// for the broker to have them.
func (f *fleetSide) send(t *testing.T, agentID, name string, payloads []string) {
	t.Helper()
	toks := make([]paho.Token, len(payloads))
	for i, p := range payloads {
		toks[i] = f.mqtt.Publish("camgate/"+agentID+"/cmd/"+name, 1, false, p)
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// replies waits until every id has a reply and returns the first reply of
// each id and the ids in the order their first replies came.
func (f *fleetSide) replies(t *testing.T, ids []string, within time.Duration) (map[string]uplink.Reply, []string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		f.mu.Lock()
		first := map[string]uplink.Reply{}
		var order []string
		for _, r := range f.got {
			if _, seen := first[r.ID]; !seen {
				first[r.ID] = r
				order = append(order, r.ID)
			}
		}
		f.mu.Unlock()
		missing := 0
		for _, id := range ids {
			if _, ok := first[id]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return first, order
		}
		if time.Now().After(deadline) {
			var which []string
			for _, id := range ids {
				if _, ok := first[id]; !ok {
					which = append(which, id)
				}
			}
			if f.diag != nil {
				f.diag(which)
			}
			t.Fatalf("%d of %d commands without a reply after %s: %v", missing, len(ids), within, which)
		}
		time.Sleep(20 * time.Millisecond) // polling the recorded replies
	}
}

// gatedPaths holds path.restart of "slow" until the test opens the gate.
type gatedPaths struct {
	*fakePaths
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedPaths) RestartPath(name string) error {
	if name == "slow" {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.fakePaths.RestartPath(name)
}

// agentLink runs the fleet side of an agent (uplink, dispatcher, events,
// outbox) against broker with the given store and paths, until stop.
func agentLink(t *testing.T, broker, id string, st *store.Store, paths pathManager) (l *link, stop func()) {
	t.Helper()
	cfg, err := conf.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	l = &link{log: log, events: newEventSink(log, true)}
	l.outbox = &outbox{st: st, log: log}
	l.client, err = uplink.New(uplink.Options{
		Broker: broker, AgentID: id, Outbox: l.outbox, Logger: log,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.disp = newDispatcher(&dispatcher{
		log: log, store: st, paths: paths, cfg: cfg, events: l.events,
		health:  func(context.Context) uplink.Health { return uplink.Health{} },
		restart: func() {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{
		l.client.Run,
		func(ctx context.Context) error { return l.events.run(ctx, l.outbox) },
		l.dispatch,
	} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !l.client.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("agent link not connected within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling the connection state
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return l, stop
}

// poll waits for cond, checking every few milliseconds, for at most 30 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling figures that have no event
	}
}

func addPayloads(prefix string, n int) (ids, payloads []string) {
	for i := range n {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		ids = append(ids, id)
		payloads = append(payloads, fmt.Sprintf(`{"id":%q,"args":{"name":%q,"conf":{"source":"demo"}}}`, id, "p"+id))
	}
	return ids, payloads
}

// TestCommandsQueuedOfflineAllRun: 200 commands sent while the agent is
// away (the broker keeps them in its persistent session) all run, exactly
// once each, and all get a reply once it connects. mochi resends a
// session's queue all at once, so this also takes more than the old queue
// of 64 at a time.
func TestCommandsQueuedOfflineAllRun(t *testing.T) {
	const n = 200
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	st := storetest.New(t, store.Options{})
	paths := newFakePaths()
	// A first run creates the persistent session and its subscriptions.
	_, stop := agentLink(t, b.URL(), "cg-off", st, paths)
	stop()
	fl := newFleetSide(t, b.URL(), "cg-off")
	ids, payloads := addPayloads("off", n)
	fl.send(t, "cg-off", "paths.add", payloads)

	_, _ = agentLink(t, b.URL(), "cg-off", st, paths)
	fl.diag = func(missing []string) {
		for _, id := range missing[:min(3, len(missing))] {
			_, ran := paths.Path("p" + id)
			e, err := st.Command(id)
			t.Logf("%s ran=%v journal=%v %v", id, ran, e.State, err)
		}
		if cl, ok := b.Server.Clients.Get("cg-off"); ok {
			t.Logf("broker inflight %d, closed %v", cl.State.Inflight.Len(), cl.Closed())
		}
	}
	first, _ := fl.replies(t, ids, 60*time.Second)
	for _, id := range ids {
		if r := first[id]; !r.OK {
			t.Fatalf("%s: %+v", id, r.Error)
		}
		if _, ok := paths.Path("p" + id); !ok {
			t.Fatalf("%s did not run", id)
		}
	}
	if got := paths.count("add"); got != n {
		t.Fatalf("%d adds for %d commands: some ran twice", got, n)
	}
}

// TestCommandBurstAllAnswered: 3000 commands at once, with a broker that
// sends them all without waiting for acknowledgements (mochi): every one
// gets a reply, ok (run once) or busy (not run), none is lost.
func TestCommandBurstAllAnswered(t *testing.T) {
	const n = 3000
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	st := storetest.New(t, store.Options{})
	paths := newFakePaths()
	_, _ = agentLink(t, b.URL(), "cg-burst", st, paths)
	fl := newFleetSide(t, b.URL(), "cg-burst")
	ids, payloads := addPayloads("burst", n)
	fl.send(t, "cg-burst", "paths.add", payloads)

	first, _ := fl.replies(t, ids, 120*time.Second)
	ok, busy := 0, 0
	for _, id := range ids {
		r := first[id]
		_, ran := paths.Path("p" + id)
		switch {
		case r.OK && ran:
			ok++
		case !r.OK && r.Error != nil && r.Error.Code == uplink.CodeBusy && !ran:
			busy++
		default:
			t.Fatalf("%s: reply %+v, ran %v", id, r, ran)
		}
	}
	if got := paths.count("add"); got != ok {
		t.Fatalf("%d adds for %d ok replies", got, ok)
	}
	t.Logf("%d ok, %d busy", ok, busy)

	// Busy is not final: the same id sent again runs.
	var again string
	for _, id := range ids {
		if !first[id].OK {
			again = id
			break
		}
	}
	if again == "" {
		return // the agent kept up with the whole burst
	}
	fl.mu.Lock()
	fl.got = nil
	fl.mu.Unlock()
	fl.send(t, "cg-burst", "paths.add", []string{fmt.Sprintf(`{"id":%q,"args":{"name":%q,"conf":{"source":"demo"}}}`, again, "p"+again)})
	r, _ := fl.replies(t, []string{again}, 10*time.Second)
	if !r[again].OK {
		t.Fatalf("retry of a busy id: %+v", r[again])
	}
	if _, ran := paths.Path("p" + again); !ran {
		t.Fatal("retry of a busy id did not run")
	}
}

// TestRedeliveryAfterCutNotRunTwice: the connection goes while a command
// runs, so its reply cannot be sent and it is not acknowledged; the broker
// sends it again on the next session and the journal answers it, without
// running it a second time.
func TestRedeliveryAfterCutNotRunTwice(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	px := mqtttest.NewProxy(t, b.Addr())
	st := storetest.New(t, store.Options{})
	paths := &gatedPaths{fakePaths: newFakePaths("slow"), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	_, _ = agentLink(t, px.URL(), "cg-cut", st, paths)
	fl := newFleetSide(t, b.URL(), "cg-cut")

	fl.send(t, "cg-cut", "path.restart", []string{`{"id":"cut-1","args":{"name":"slow"}}`})
	select {
	case <-paths.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("command did not start")
	}
	px.Cut()
	close(paths.gate) // it finishes while the agent is cut off
	px.Restore()

	r, _ := fl.replies(t, []string{"cut-1"}, 20*time.Second)
	if !r["cut-1"].OK {
		t.Fatalf("reply %+v", r["cut-1"])
	}
	if got := paths.count("restart"); got != 1 {
		t.Fatalf("path.restart ran %d times", got)
	}
	if e, err := st.Command("cut-1"); err != nil || e.State != store.CommandDone {
		t.Fatalf("journal: %+v %v", e, err)
	}
}

// TestCutDuringBacklogLosesNothing: the connection goes while the agent
// works off 200 commands it got on connecting. Every command still runs
// once and gets its reply: replies that could not be sent go out once the
// broker is back, the broker's second copies get the journaled reply.
func TestCutDuringBacklogLosesNothing(t *testing.T) {
	const n = 200
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	px := mqtttest.NewProxy(t, b.Addr())
	st := storetest.New(t, store.Options{})
	paths := newFakePaths()
	_, stop := agentLink(t, px.URL(), "cg-bl", st, paths)
	stop()
	fl := newFleetSide(t, b.URL(), "cg-bl")
	ids, payloads := addPayloads("bl", n)
	fl.send(t, "cg-bl", "paths.add", payloads)

	l, _ := agentLink(t, px.URL(), "cg-bl", st, paths)
	poll(t, "50 commands run", func() bool { return paths.count("add") >= 50 })
	px.Cut()
	poll(t, "connection lost", func() bool { return !l.client.Connected() })
	px.Restore()

	first, _ := fl.replies(t, ids, 60*time.Second)
	for _, id := range ids {
		if !first[id].OK {
			t.Fatalf("%s: %+v", id, first[id].Error)
		}
	}
	if got := paths.count("add"); got != n {
		t.Fatalf("%d adds for %d commands", got, n)
	}
}
