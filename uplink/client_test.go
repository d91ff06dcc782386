package uplink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]uplink.Options{
		"no broker":    {AgentID: "a"},
		"bad scheme":   {Broker: "http://127.0.0.1:1", AgentID: "a"},
		"no id":        {Broker: "tcp://127.0.0.1:1"},
		"wildcard id":  {Broker: "tcp://127.0.0.1:1", AgentID: "a+b"},
		"slash id":     {Broker: "tcp://127.0.0.1:1", AgentID: "a/b"},
		"id all":       {Broker: "tcp://127.0.0.1:1", AgentID: "all"},
		"wild prefix":  {Broker: "tcp://127.0.0.1:1", AgentID: "a", TopicPrefix: "x/#"},
		"missing ca":   {Broker: "ssl://127.0.0.1:1", AgentID: "a", CAFile: "/nonexistent/ca.pem"},
		"cert, no key": {Broker: "ssl://127.0.0.1:1", AgentID: "a", CertFile: "c.pem"},
	} {
		if _, err := uplink.New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	_, err := uplink.New(uplink.Options{Broker: "tcp://u:secret@127.0.0.1:1", AgentID: "a/b"})
	if !errors.Is(err, uplink.ErrBadTopic) {
		t.Fatalf("want ErrBadTopic, got %v", err)
	}
	_, err = uplink.New(uplink.Options{Broker: "gopher://u:secret@127.0.0.1:1", AgentID: "a"})
	if !errors.Is(err, uplink.ErrBadBroker) || contains(err.Error(), "secret") {
		t.Fatalf("want redacted ErrBadBroker, got %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestTopics(t *testing.T) {
	tp, err := uplink.NewTopics("camgate", "cg-1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic     string
		name      string
		broadcast bool
		ok        bool
	}{
		{"camgate/cg-1/cmd/ping", "ping", false, true},
		{"camgate/all/cmd/paths.list", "paths.list", true, true},
		{"camgate/cg-2/cmd/ping", "", false, false},
		{"camgate/cg-1/cmd/", "", false, false},
		{"camgate/cg-1/cmd/a/b", "", false, false},
		{"other/cg-1/cmd/ping", "", false, false},
	}
	for _, c := range cases {
		name, bc, ok := tp.CmdName(c.topic)
		if name != c.name || bc != c.broadcast || ok != c.ok {
			t.Errorf("CmdName(%q) = %q %v %v", c.topic, name, bc, ok)
		}
	}
	if tp.Status() != "camgate/cg-1/status" || tp.Reply("r1") != "camgate/cg-1/reply/r1" || tp.Health() != "camgate/cg-1/health" || tp.Events() != "camgate/cg-1/events" {
		t.Fatal("topic names")
	}
	id, rest, ok := uplink.ParseAgentTopic("camgate", "camgate/cg-1/reply/r1")
	if id != "cg-1" || rest != "reply/r1" || !ok {
		t.Fatalf("ParseAgentTopic: %q %q %v", id, rest, ok)
	}
}

func TestBirthAndGracefulShutdown(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, b.URL(), nil, nil)
	stop := runClient(t, c)
	st := waitStatus(t, ch, uplink.StateOnline, "")
	if st.Version != "1.2.3" || st.BootID != "7" || st.StartedAt == nil || st.TS == nil {
		t.Fatalf("birth %+v", st)
	}
	if !c.Connected() || c.Stats().Connects != 1 {
		t.Fatalf("stats %+v", c.Stats())
	}
	// The birth is retained: a late fleet client sees it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := dialFleet(t, b.URL()).Status(ctx, "cg-test")
	if err != nil || got.State != uplink.StateOnline {
		t.Fatalf("retained status %+v %v", got, err)
	}
	stop()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonShutdown)
	raw, ok := b.Retained("camgate/cg-test/status")
	if !ok {
		t.Fatal("no retained status after shutdown")
	}
	var last uplink.Status
	json.Unmarshal(raw, &last)
	if last.State != uplink.StateOffline || last.Reason != uplink.ReasonShutdown {
		t.Fatalf("retained after stop %s", raw)
	}
	if c.Connected() {
		t.Fatal("Connected after stop")
	}
}

func TestLastWillOnAbruptDisconnectAndReconnect(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	p := mqtttest.NewProxy(t, b.Addr())
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, p.URL(), nil, nil)
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")
	p.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	raw, _ := b.Retained("camgate/cg-test/status")
	if string(raw) != `{"state":"offline","reason":"lost"}` {
		t.Fatalf("last will %s", raw)
	}
	p.Restore()
	waitStatus(t, ch, uplink.StateOnline, "")
	if n := c.Stats().Connects; n < 2 {
		t.Fatalf("connects %d after restore", n)
	}
}

// TestReconnectBackoff: a session that lasted StableSession is followed,
// once lost, by a prompt retry however many losses came before; a broker
// that drops every session sooner than that gets doubling waits.
func TestReconnectBackoff(t *testing.T) {
	const (
		minBackoff = 100 * time.Millisecond
		drops      = 6 // without a reset the 6th wait is 1.6-3.2 s
	)
	for _, tc := range []struct {
		name   string
		stable time.Duration
	}{{"sessions that lasted", 300 * time.Millisecond}, {"sessions dropped at once", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
			p := mqtttest.NewProxy(t, b.Addr())
			ch := watch(t, dialFleet(t, b.URL()), "cg-test")
			c := newClient(t, p.URL(), nil, func(o *uplink.Options) {
				o.MinBackoff, o.MaxBackoff, o.StableSession = minBackoff, 10*time.Second, tc.stable
			})
			runClient(t, c)
			waitStatus(t, ch, uplink.StateOnline, "")
			var waits []time.Duration
			for range drops {
				// The session's age is the scenario here, not a wait for
				// an event: it is what the client judges the loss by.
				time.Sleep(400 * time.Millisecond)
				p.Cut()
				p.Restore()
				lost := time.Now()
				waitStatus(t, ch, uplink.StateOnline, "")
				waits = append(waits, time.Since(lost))
			}
			last := waits[len(waits)-1]
			if tc.stable < time.Hour && last > 8*minBackoff {
				t.Fatalf("reconnects after each loss took %v: the backoff was not reset by sessions that lasted", waits)
			}
			if tc.stable == time.Hour && last < 16*minBackoff {
				t.Fatalf("reconnects after each loss took %v: the backoff did not grow", waits)
			}
			t.Logf("reconnects took %v", waits)
		})
	}
}

func TestStartsWithoutBroker(t *testing.T) {
	addr := mqtttest.FreeAddr(t) // nothing listens here yet
	c := newClient(t, "tcp://"+addr, nil, nil)
	stop := runClient(t, c)
	if c.Connected() {
		t.Fatal("connected to nothing")
	}
	stop() // returns promptly while retrying
}

func TestUsernamePassword(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{Users: map[string]string{"agent": "pw1", "fleet": "pw2"}})
	f := dialFleetAuth(t, b.URL(), "fleet", "pw2")
	ch := watch(t, f, "cg-test")
	bad := newClient(t, b.URL(), nil, func(o *uplink.Options) { o.Username, o.Password = "agent", "wrong" })
	stopBad := runClient(t, bad)
	good := newClient(t, b.URL(), nil, func(o *uplink.Options) { o.AgentID, o.Username, o.Password = "cg-good", "agent", "pw1" })
	runClient(t, good)
	ch2 := watch(t, f, "cg-good")
	waitStatus(t, ch2, uplink.StateOnline, "")
	if bad.Connected() || bad.Stats().Connects != 0 {
		t.Fatal("wrong password connected")
	}
	stopBad()
	select {
	case m := <-ch:
		t.Fatalf("message from the refused client: %s %s", m.Kind, m.Payload)
	default:
	}
}

func TestWebSocketBroker(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{WebSocket: true})
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, b.WSURL(), nil, nil)
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")
}

func TestCommandsHandedOffAndReplied(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, b.URL(), nil, nil)
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")

	// A responder standing in for the dispatcher.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan uplink.Incoming, 10)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case in := <-c.Commands():
				seen <- in
				var cmd uplink.Command
				json.Unmarshal(in.Payload, &cmd)
				r, _ := json.Marshal(uplink.Reply{ID: cmd.ID, Cmd: in.Name, OK: true, Result: json.RawMessage(`{"pong":true}`)})
				if err := c.Reply(ctx, cmd.ID, r); err != nil && ctx.Err() == nil {
					t.Errorf("reply: %v", err)
				}
				in.Ack()
			}
		}
	}()
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	r, err := f.Command(rctx, "cg-test", "ping", nil)
	if err != nil || !r.OK || r.Cmd != "ping" || string(r.Result) != `{"pong":true}` {
		t.Fatalf("reply %+v %v", r, err)
	}
	if in := <-seen; in.Name != "ping" || in.Broadcast {
		t.Fatalf("incoming %+v", in)
	}
	// The broadcast form reaches the agent marked as such.
	if err := f.Publish(rctx, "camgate/all/cmd/status", []byte(`{"id":"b2"}`)); err != nil {
		t.Fatal(err)
	}
	if in := <-seen; in.Name != "status" || !in.Broadcast {
		t.Fatalf("broadcast incoming %+v", in)
	}
}

// TestStoreAndForwardThroughCut cuts the link for several "intervals"
// while messages keep being appended, restores it, and checks that the
// fleet side got every seq, in order, with duplicates only as redelivery.
func TestStoreAndForwardThroughCut(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	p := mqtttest.NewProxy(t, b.Addr())
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")                     // statuses
	hc := watch(t, dialFleet(t, b.URL()), "cg-test") // health
	st := storetest.New(t, store.Options{})
	c := newClient(t, p.URL(), storeOutbox{st}, func(o *uplink.Options) { o.InFlight = 8 })
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")

	appendHealth := func(n int) uint64 {
		var last uint64
		for range n {
			seq, _, err := st.AppendOutbox(uplink.KindHealth, func(seq uint64) ([]byte, error) {
				return fmt.Appendf(nil, `{"seq":%d}`, seq), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			last = seq
		}
		return last
	}
	var got []uint64
	waitSeq := func(want uint64) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for len(got) == 0 || got[len(got)-1] < want {
			select {
			case m := <-hc:
				if m.Kind == uplink.KindHealth {
					got = append(got, m.Seq)
				}
			case <-deadline:
				t.Fatalf("fleet saw up to %v, want %d", tail(got), want)
			}
		}
	}
	waitSeq(appendHealth(50))
	p.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	appendHealth(300) // queued while cut
	if s, _ := st.OutboxStats(); s.Depth < 300 {
		t.Fatalf("outbox depth %d while cut, want >= 300", s.Depth)
	}
	p.Restore()
	last := appendHealth(50)
	waitSeq(last)
	checkSeqs(t, got, last)
	// Everything acknowledged is gone from the outbox.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := st.OutboxStats()
		if s.Depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox depth %d after the fleet saw everything", s.Depth)
		}
		time.Sleep(10 * time.Millisecond) // the last PUBACKs are in flight; no event to wait on from here
	}
}

// checkSeqs: first occurrences are exactly 1..last in order; repeats are
// only of seqs already seen (QoS 1 redelivery).
func checkSeqs(t *testing.T, got []uint64, last uint64) {
	t.Helper()
	seen := map[uint64]bool{}
	var next uint64 = 1
	dups := 0
	for _, s := range got {
		if seen[s] {
			dups++
			continue
		}
		if s != next {
			t.Fatalf("seq %d arrived when %d was due (gap or reorder); tail %v", s, next, tail(got))
		}
		seen[s] = true
		next++
	}
	if next-1 != last {
		t.Fatalf("saw 1..%d, want 1..%d", next-1, last)
	}
	t.Logf("%d messages, %d redelivered", last, dups)
}

func tail(s []uint64) []uint64 {
	if len(s) > 10 {
		return s[len(s)-10:]
	}
	return s
}

func TestDrainWindowBoundsInFlight(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	ob := newMemOutbox()
	for range 200 {
		ob.add(uplink.KindEvents)
	}
	c := newClient(t, b.URL(), ob, func(o *uplink.Options) { o.InFlight = 4 })
	runClient(t, c)
	var got []uint64
	deadline := time.After(20 * time.Second)
	for len(got) < 200 {
		select {
		case m := <-ch:
			if m.Kind == uplink.KindEvents {
				got = append(got, m.Seq)
			}
		case <-deadline:
			t.Fatalf("got %d of 200", len(got))
		}
	}
	checkSeqs(t, got, 200)
	if max := ob.maxOutstanding(); max > 4 {
		t.Fatalf("%d messages read and not acked at once, window is 4", max)
	}
}

func TestGracefulStopFlushesOutbox(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	path := filepath.Join(t.TempDir(), store.FileName)
	st := storetest.Open(t, path, store.Options{})
	c := newClient(t, b.URL(), storeOutbox{st}, nil)
	stop := runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")
	for range 100 {
		st.AppendOutbox(uplink.KindEvents, func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, `{"seq":%d}`, seq), nil })
	}
	stop()
	s, _ := st.OutboxStats()
	if s.Depth != 0 {
		t.Fatalf("outbox depth %d after a graceful stop with the broker up", s.Depth)
	}
	var events int
	for {
		m := <-ch
		if m.Kind == uplink.KindEvents {
			events++
		}
		if m.Kind == "status" {
			var st uplink.Status
			json.Unmarshal(m.Payload, &st)
			if st.Reason == uplink.ReasonShutdown {
				break
			}
		}
	}
	if events < 100 {
		t.Fatalf("%d events before the shutdown status, want 100", events)
	}
}

// TestStopWhileConnectingIsPrompt: a broker that accepts TCP and never
// answers CONNECT must not hold a stop for the connect timeout.
func TestStopWhileConnectingIsPrompt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	c := newClient(t, "tcp://"+ln.Addr().String(), nil, func(o *uplink.Options) { o.ConnectTimeout = 30 * time.Second })
	stop := runClient(t, c)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("client never dialled")
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("stop took %s while waiting for CONNACK", d)
	}
}

func TestRunTwiceRefused(t *testing.T) {
	c := newClient(t, "tcp://"+mqtttest.FreeAddr(t), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 2)
	for range 2 {
		go func() { results <- c.Run(ctx) }()
	}
	// Whichever call came second returns at once; the other runs until cancel.
	if err := <-results; !errors.Is(err, uplink.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-results; err != nil {
		t.Fatalf("first Run: %v", err)
	}
}
