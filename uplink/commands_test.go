package uplink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

func cmdID(t *testing.T, in uplink.Incoming) string {
	t.Helper()
	var c uplink.Command
	if err := json.Unmarshal(in.Payload, &c); err != nil {
		t.Fatalf("payload %q: %v", in.Payload, err)
	}
	return c.ID
}

func next(t *testing.T, ch <-chan uplink.Incoming, within time.Duration) (uplink.Incoming, bool) {
	t.Helper()
	tm := time.NewTimer(within)
	defer tm.Stop()
	select {
	case in := <-ch:
		return in, true
	case <-tm.C:
		return uplink.Incoming{}, false
	}
}

func sendCmd(t *testing.T, f interface {
	Publish(context.Context, string, []byte) error
}, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Publish(ctx, "camgate/cg-test/cmd/ping", fmt.Appendf(nil, `{"id":%q}`, id)); err != nil {
		t.Fatal(err)
	}
}

// TestUnackedCommandComesBack: a command the agent has not acknowledged
// stays with the broker and is sent again (DUP) after the connection is
// cut; once acknowledged it is not sent again.
func TestUnackedCommandComesBack(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	px := mqtttest.NewProxy(t, b.Addr())
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, px.URL(), nil, nil)
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")

	sendCmd(t, f, "u-1")
	first, ok := next(t, c.Commands(), 5*time.Second)
	if !ok || cmdID(t, first) != "u-1" || first.Redelivered {
		t.Fatalf("first delivery %+v %v", first, ok)
	}
	// Not acknowledged; the connection goes.
	px.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	px.Restore()
	again, ok := next(t, c.Commands(), 10*time.Second)
	if !ok || cmdID(t, again) != "u-1" || !again.Redelivered {
		t.Fatalf("redelivery %+v %v", again, ok)
	}
	first.Ack() // of the old connection: nothing to do, nothing breaks
	again.Ack()
	// Acknowledged now (the PUBACK is sent asynchronously: wait until the
	// broker has it): another cut brings nothing back.
	waitStatus(t, ch, uplink.StateOnline, "")
	deadline := time.Now().Add(5 * time.Second)
	for b.Inflight("cg-test") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("broker still waits for %d acknowledgements", b.Inflight("cg-test"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	px.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	px.Restore()
	waitStatus(t, ch, uplink.StateOnline, "")
	sendCmd(t, f, "u-2")
	if in, ok := next(t, c.Commands(), 5*time.Second); !ok || cmdID(t, in) != "u-2" {
		t.Fatalf("after the ack: %+v %v (u-1 came back?)", in, ok)
	}
}

// TestCopyOfWaitingCommandMerged: a command still waiting when the
// connection goes comes again from the broker (DUP); that copy is not
// queued a second time, and acknowledging the command acknowledges it on
// the new connection, so it does not come a third time.
func TestCopyOfWaitingCommandMerged(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	px := mqtttest.NewProxy(t, b.Addr())
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, px.URL(), nil, nil)
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")

	sendCmd(t, f, "m-1")
	waitQueued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for c.Stats().CommandsQueued != n {
			if time.Now().After(deadline) {
				t.Fatalf("queued %d, want %d", c.Stats().CommandsQueued, n)
			}
			time.Sleep(5 * time.Millisecond) // polling a figure
		}
	}
	waitQueued(1) // nobody takes it yet
	px.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	px.Restore()
	waitStatus(t, ch, uplink.StateOnline, "")
	sendCmd(t, f, "m-2") // the broker resends m-1 before it sends m-2
	waitQueued(2)
	in, ok := next(t, c.Commands(), 5*time.Second)
	if !ok || cmdID(t, in) != "m-1" {
		t.Fatalf("first: %+v %v", in, ok)
	}
	in.Ack()
	in2, ok := next(t, c.Commands(), 5*time.Second)
	if !ok || cmdID(t, in2) != "m-2" {
		t.Fatalf("second: %+v %v (m-1 queued twice?)", in2, ok)
	}
	in2.Ack()
	// The broker has both acknowledgements before the next cut.
	deadline := time.Now().Add(5 * time.Second)
	for {
		cl, ok := b.Server.Clients.Get("cg-test")
		if ok && cl.State.Inflight.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broker still waits for acknowledgements (m-1's copy not acknowledged?)")
		}
		time.Sleep(5 * time.Millisecond) // polling the broker's state
	}
	px.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	px.Restore()
	waitStatus(t, ch, uplink.StateOnline, "")
	sendCmd(t, f, "m-3")
	if in, ok := next(t, c.Commands(), 5*time.Second); !ok || cmdID(t, in) != "m-3" {
		t.Fatalf("after the acks: %+v %v (m-1 not acknowledged on the new connection?)", in, ok)
	}
}

// TestOverflowIsBusyThenDeferred: with nobody taking commands, the first
// CommandQueue wait to run, the next BusyQueue wait for a busy answer and
// the rest stay with the broker; once everything queued has been taken and
// acknowledged, the client reconnects and the broker sends the rest again.
// Every command is seen, none is lost.
func TestOverflowIsBusyThenDeferred(t *testing.T) {
	const total, runQ, busyQ = 20, 4, 6
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, b.URL(), nil, func(o *uplink.Options) { o.CommandQueue, o.BusyQueue = runQ, busyQ })
	runClient(t, c)
	waitStatus(t, ch, uplink.StateOnline, "")

	for i := range total {
		sendCmd(t, f, fmt.Sprintf("o-%02d", i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().CommandsDeferred < total-runQ-busyQ {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", c.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	if st := c.Stats(); st.CommandsBusy != busyQ {
		t.Fatalf("busy %d, want %d", st.CommandsBusy, busyQ)
	}
	ran, busy := map[string]int{}, map[string]int{}
	resent := 0
	for len(ran)+len(busy) < total {
		select {
		case in := <-c.Commands():
			ran[cmdID(t, in)]++
			if in.Redelivered {
				resent++
			}
			in.Ack()
		case in := <-c.Busy():
			busy[cmdID(t, in)]++
			if in.Redelivered {
				resent++
			}
			in.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("after %d run and %d busy, nothing more (stats %+v)", len(ran), len(busy), c.Stats())
		}
	}
	for i := range total {
		id := fmt.Sprintf("o-%02d", i)
		if ran[id]+busy[id] != 1 {
			t.Errorf("%s: run %d, busy %d", id, ran[id], busy[id])
		}
	}
	// Arrival order is kept for the first runQ (the rest came back in
	// whatever order the broker resends).
	for i := range runQ {
		if id := fmt.Sprintf("o-%02d", i); ran[id] != 1 {
			t.Errorf("%s not among the first to run", id)
		}
	}
	if resent != total-runQ-busyQ {
		t.Fatalf("%d commands came back from the broker, want the %d deferred", resent, total-runQ-busyQ)
	}
}
