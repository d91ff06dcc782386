//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// replyLog is a fleet-side client on mosquitto that records the replies of
// agent cg-interop in arrival order.
type replyLog struct {
	c     paho.Client
	mu    sync.Mutex
	order []string // reply ids in arrival order
	code  map[string]string
}

func newReplyLog(t *testing.T, port int) *replyLog {
	t.Helper()
	r := &replyLog{code: map[string]string{}}
	o := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(port)).SetClientID("fleet-interop").
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false)
	r.c = paho.NewClient(o)
	if tok := r.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet connect: %v", tok.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(100) })
	tok := r.c.Subscribe("camgate/cg-interop/reply/+", 1, func(_ paho.Client, m paho.Message) {
		var rep struct {
			ID    string `json:"id"`
			OK    bool   `json:"ok"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m.Payload(), &rep); err != nil {
			t.Errorf("reply %q: %v", m.Payload(), err)
			return
		}
		code := "ok"
		if !rep.OK && rep.Error != nil {
			code = rep.Error.Code
		}
		r.mu.Lock()
		if _, seen := r.code[rep.ID]; !seen {
			r.order = append(r.order, rep.ID)
			r.code[rep.ID] = code
		}
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet subscribe: %v", tok.Error())
	}
	return r
}

// send publishes the payloads on cmd/NAME back to back, QoS 1.
func (r *replyLog) send(t *testing.T, name string, payloads []string) {
	t.Helper()
	toks := make([]paho.Token, len(payloads))
	for i, p := range payloads {
		toks[i] = r.c.Publish("camgate/cg-interop/cmd/"+name, 1, false, p)
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// wait returns the ids in the order of their first replies and the code of
// each (ok or an error code) once n ids have a reply.
func (r *replyLog) wait(t *testing.T, n int, within time.Duration) ([]string, map[string]string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		got := len(r.order)
		order := append([]string(nil), r.order...)
		codes := make(map[string]string, len(r.code))
		for k, v := range r.code {
			codes[k] = v
		}
		r.mu.Unlock()
		if got >= n {
			return order, codes
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replies after %s", got, n, within)
		}
		time.Sleep(50 * time.Millisecond) // polling the recorded replies
	}
}

// TestCommandsThroughMosquitto: the agent against mosquitto, which keeps
// order per topic: 200 commands queued while the agent is stopped all run,
// once each, in the order sent; a burst of 3000 gets 3000 replies, ok (in
// the order sent) or busy, none lost. mosquitto's window of 20
// unacknowledged messages (max_inflight_messages) does not hold while the
// client publishes too (2.0.11: its replies let more commands through), so
// the burst does fill the agent's queue.
func TestCommandsThroughMosquitto(t *testing.T) {
	dir := outDir(t)
	_, port := startMosquitto(t, dir)
	broker := "tcp://127.0.0.1:" + strconv.Itoa(port)
	a := startAgent(t, AgentOptions{Dir: dir, LogLevel: "info", Sections: map[string]map[string]any{
		"uplink": {"broker": broker, "healthInterval": "10s"},
	}})
	sub1(t, port, "camgate/cg-interop/status") // online: the session and its subscriptions exist
	stopAgent(t, a)                            // the session stays with mosquitto

	fl := newReplyLog(t, port)
	const queued = 200
	var ids, payloads []string
	for i := range queued {
		id := fmt.Sprintf("q-%04d", i)
		ids = append(ids, id)
		payloads = append(payloads, fmt.Sprintf(`{"id":%q,"args":{"name":"fleet%04d","conf":{"source":"demo"}}}`, id, i))
	}
	fl.send(t, "paths.add", payloads)
	if err := a.Restart(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	order, codes := fl.wait(t, queued, 120*time.Second)
	for i, id := range ids {
		if codes[id] != "ok" {
			t.Fatalf("%s: %s (a second run would say conflict)", id, codes[id])
		}
		if order[i] != id {
			t.Fatalf("reply %d is %s, want %s: not in the order sent", i, order[i], id)
		}
	}

	const burst = 3000
	ids, payloads = nil, nil
	for i := range burst {
		id := fmt.Sprintf("b-%04d", i)
		ids = append(ids, id)
		payloads = append(payloads, fmt.Sprintf(`{"id":%q}`, id))
	}
	fl.send(t, "ping", payloads)
	order, codes = fl.wait(t, queued+burst, 300*time.Second)
	// Busy replies come from their own goroutine; the order is that of the
	// commands that ran.
	var ran []string
	for _, id := range order[queued:] {
		if codes[id] == "ok" {
			ran = append(ran, id)
		}
	}
	busy, k := 0, 0
	for _, id := range ids {
		switch codes[id] {
		case "ok":
			if ran[k] != id {
				t.Fatalf("burst: reply %d is %s, want %s: not in the order sent", k, ran[k], id)
			}
			k++
		case "busy":
			busy++
		default:
			t.Fatalf("%s: %q", id, codes[id])
		}
	}
	t.Logf("burst of %d: %d busy", burst, busy)
}

// TestCommandsSurviveSIGKILL: the agent is killed while it works off 200
// commands queued for it. After a restart mosquitto sends every command it
// has no acknowledgement for again: each gets a reply, none runs twice (a
// second paths.add of a name would answer conflict). The one that was
// running at the kill is answered "interrupted" (internal) if its run had
// begun, ok otherwise.
func TestCommandsSurviveSIGKILL(t *testing.T) {
	dir := outDir(t)
	_, port := startMosquitto(t, dir)
	broker := "tcp://127.0.0.1:" + strconv.Itoa(port)
	a := startAgent(t, AgentOptions{Dir: dir, LogLevel: "info", Sections: map[string]map[string]any{
		"uplink": {"broker": broker, "healthInterval": "10s"},
	}})
	sub1(t, port, "camgate/cg-interop/status")
	stopAgent(t, a)

	fl := newReplyLog(t, port)
	const n = 200
	var payloads []string
	for i := range n {
		payloads = append(payloads, fmt.Sprintf(`{"id":"k-%04d","args":{"name":"kill%04d","conf":{"source":"demo"}}}`, i, i))
	}
	fl.send(t, "paths.add", payloads)
	if err := a.Restart(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	fl.wait(t, 50, 60*time.Second)
	a.Kill()
	if err := a.Restart(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, codes := fl.wait(t, n, 120*time.Second)
	interrupted := 0
	for i := range n {
		switch id := fmt.Sprintf("k-%04d", i); codes[id] {
		case "ok":
		case "internal":
			interrupted++
		default:
			t.Fatalf("%s: %s", id, codes[id])
		}
	}
	if interrupted > 1 {
		t.Fatalf("%d commands answered interrupted; at most the one running at the kill", interrupted)
	}
}
