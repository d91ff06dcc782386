package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// fakePaths stands in for streaming.Manager: it records calls and panics
// on RestartPath("boom").
type fakePaths struct {
	mu      sync.Mutex
	entries map[string]streaming.PathConfig
	calls   map[string]int
}

func newFakePaths(names ...string) *fakePaths {
	f := &fakePaths{entries: map[string]streaming.PathConfig{}, calls: map[string]int{}}
	for _, n := range names {
		f.entries[n] = streaming.PathConfig{Source: "demo"}
	}
	return f
}

func (f *fakePaths) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakePaths) Paths() []streaming.PathInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []streaming.PathInfo
	for n, c := range f.entries {
		out = append(out, streaming.PathInfo{Name: n, Source: c.Source, State: streaming.StateIdle})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakePaths) Path(name string) (streaming.PathInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.entries[name]
	return streaming.PathInfo{Name: name, Source: c.Source, State: streaming.StateIdle}, ok
}

func (f *fakePaths) AddPath(name string, c streaming.PathConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["add"]++
	if _, ok := f.entries[name]; ok {
		return streaming.ErrPathExists
	}
	f.entries[name] = c
	return nil
}

func (f *fakePaths) UpdatePath(name string, c streaming.PathConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["update"]++
	if _, ok := f.entries[name]; !ok {
		return streaming.ErrPathNotFound
	}
	f.entries[name] = c
	return nil
}

func (f *fakePaths) SetPath(name string, c streaming.PathConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["set"]++
	f.entries[name] = c
	return nil
}

func (f *fakePaths) RemovePath(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["remove"]++
	if _, ok := f.entries[name]; !ok {
		return streaming.ErrPathNotFound
	}
	delete(f.entries, name)
	return nil
}

func (f *fakePaths) RestartPath(name string) error {
	if name == "boom" {
		panic("restart exploded for rtsp://admin:hunter2@cam")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["restart"]++
	if _, ok := f.entries[name]; !ok {
		return streaming.ErrPathNotFound
	}
	return nil
}

// harness is the fleet side of an agent (uplink, dispatcher, event sink,
// outbox) on an in-process broker, with a fake path manager.
type harness struct {
	broker    *mqtttest.Broker
	fleet     *fleet.Client
	store     *store.Store
	paths     *fakePaths
	cfg       *conf.Config
	link      *link
	events    <-chan fleet.Msg
	restarted atomic.Int32
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := conf.Load("", nil) // embedded defaults: file paths demo and all_others
	if err != nil {
		t.Fatal(err)
	}
	cfg.Paths["cam1"] = conf.PathConf{Source: "rtsp://admin:s3cret@10.0.0.64:554/ch1"}
	h := &harness{broker: mqtttest.NewBroker(t, mqtttest.BrokerOptions{}), cfg: cfg, paths: newFakePaths("demo", "cam1")}
	h.store = storetest.New(t, store.Options{})
	h.fleet = dialFleetT(t, h.broker.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, stop, err := h.fleet.Subscribe(ctx, "cg-h", 10000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	h.events = msgs

	log := zerolog.Nop()
	l := &link{log: log, events: newEventSink(log, true)}
	l.outbox = &outbox{st: h.store, log: log}
	l.client, err = uplink.New(uplink.Options{
		Broker: h.broker.URL(), AgentID: "cg-h", Outbox: l.outbox, Logger: log,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.disp = newDispatcher(&dispatcher{
		log: log, store: h.store, paths: h.paths, cfg: cfg, events: l.events,
		health:  func(context.Context) uplink.Health { return uplink.Health{Agent: uplink.AgentHealth{ID: "cg-h"}} },
		restart: func() { h.restarted.Add(1) },
	})
	h.link = l

	rctx, rcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{
		l.client.Run,
		func(ctx context.Context) error { return l.events.run(ctx, l.outbox) },
		l.dispatch,
	} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(rctx) }()
	}
	t.Cleanup(func() { rcancel(); wg.Wait() })
	h.waitOnline(t)
	return h
}

func dialFleetT(t *testing.T, broker string) *fleet.Client {
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

func (h *harness) waitOnline(t *testing.T) {
	t.Helper()
	h.waitMsg(t, func(m fleet.Msg) bool {
		return m.Kind == "status" && strings.Contains(string(m.Payload), `"online"`)
	})
}

// waitMsg reads status/health/events until match returns true.
func (h *harness) waitMsg(t *testing.T, match func(fleet.Msg) bool) fleet.Msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-h.events:
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatal("expected message did not arrive within 10s")
		}
	}
}

func (h *harness) send(t *testing.T, name, id, payload string) uplink.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := h.fleet.SendRaw(ctx, "cg-h", name, id, []byte(payload))
	if err != nil {
		t.Fatalf("%s %s: %v", name, id, err)
	}
	var r uplink.Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reply %s: %v", raw, err)
	}
	if r.ID != id || r.Cmd != name {
		t.Fatalf("reply for %s/%s names %s/%s", name, id, r.Cmd, r.ID)
	}
	return r
}

var idSeq atomic.Int64

func (h *harness) cmd(t *testing.T, name, args string) uplink.Reply {
	t.Helper()
	id := fmt.Sprintf("t%d", idSeq.Add(1))
	payload := fmt.Sprintf(`{"id":%q}`, id)
	if args != "" {
		payload = fmt.Sprintf(`{"id":%q,"args":%s}`, id, args)
	}
	return h.send(t, name, id, payload)
}

func wantOK(t *testing.T, r uplink.Reply) {
	t.Helper()
	if !r.OK || r.Error != nil {
		t.Fatalf("%s: want ok, got %+v", r.Cmd, r.Error)
	}
}

func wantCode(t *testing.T, r uplink.Reply, code uplink.ErrorCode) {
	t.Helper()
	if r.OK || r.Error == nil || r.Error.Code != code {
		t.Fatalf("%s: want %s, got ok=%v %+v (result %s)", r.Cmd, code, r.OK, r.Error, r.Result)
	}
}

func TestCommandsOverMQTT(t *testing.T) {
	h := newHarness(t)

	r := h.cmd(t, "ping", "")
	wantOK(t, r)
	if !strings.Contains(string(r.Result), `"pong":true`) {
		t.Fatalf("ping result %s", r.Result)
	}
	r = h.cmd(t, "status", "")
	wantOK(t, r)
	if !strings.Contains(string(r.Result), `"cg-h"`) {
		t.Fatalf("status result %s", r.Result)
	}
	r = h.cmd(t, "config.get", "")
	wantOK(t, r)
	if strings.Contains(string(r.Result), "s3cret") || !strings.Contains(string(r.Result), "10.0.0.64") {
		t.Fatalf("config.get leaks or lacks the camera: %s", r.Result)
	}

	wantOK(t, h.cmd(t, "paths.add", `{"name":"cam9","conf":{"source":"rtsp://u:topsecret@10.1.1.1/s","sourceOnDemand":false}}`))
	wantCode(t, h.cmd(t, "paths.add", `{"name":"cam9","conf":{"source":"demo"}}`), uplink.CodeConflict)
	wantCode(t, h.cmd(t, "paths.add", `{"name":"demo","conf":{"source":"demo"}}`), uplink.CodeReadOnly)
	wantCode(t, h.cmd(t, "paths.add", `{"name":"x","conf":{"source":"ftp://x"}}`), uplink.CodeBadRequest)
	wantCode(t, h.cmd(t, "paths.add", `{"name":"x"}`), uplink.CodeBadRequest)
	wantOK(t, h.cmd(t, "paths.update", `{"name":"cam9","conf":{"source":"demo"}}`))
	wantCode(t, h.cmd(t, "paths.update", `{"name":"nope","conf":{"source":"demo"}}`), uplink.CodeNotFound)
	wantCode(t, h.cmd(t, "paths.update", `{"name":"cam1","conf":{"source":"demo"}}`), uplink.CodeReadOnly)

	r = h.cmd(t, "paths.list", "")
	wantOK(t, r)
	var list struct {
		Paths []struct {
			Name   string `json:"name"`
			Origin string `json:"origin"`
			State  string `json:"state"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.Result, &list); err != nil {
		t.Fatal(err)
	}
	origins := map[string]string{}
	for _, p := range list.Paths {
		origins[p.Name] = p.Origin
	}
	if origins["cam9"] != "fleet" || origins["demo"] != "file" || origins["cam1"] != "file" {
		t.Fatalf("paths.list origins %v (%s)", origins, r.Result)
	}
	if strings.Contains(string(r.Result), "s3cret") || strings.Contains(string(r.Result), "topsecret") {
		t.Fatalf("paths.list leaks a password: %s", r.Result)
	}

	wantOK(t, h.cmd(t, "path.restart", `{"name":"cam9"}`))
	wantCode(t, h.cmd(t, "path.restart", `{"name":"nope"}`), uplink.CodeNotFound)
	wantCode(t, h.cmd(t, "paths.remove", `{"name":"demo"}`), uplink.CodeReadOnly)
	wantOK(t, h.cmd(t, "paths.remove", `{"name":"cam9"}`))
	wantCode(t, h.cmd(t, "paths.remove", `{"name":"cam9"}`), uplink.CodeNotFound)
	if _, ok := h.paths.Path("cam9"); ok {
		t.Fatal("cam9 still in the path manager after paths.remove")
	}

	// paths.set: the fleet set becomes exactly this.
	wantOK(t, h.cmd(t, "paths.add", `{"name":"old","conf":{"source":"demo"}}`))
	wantOK(t, h.cmd(t, "paths.set", `{"paths":{"a":{"source":"demo"},"b":{"source":"publisher"}}}`))
	fp, _ := h.store.FleetPaths()
	if len(fp) != 2 || fp["a"].Source != "demo" || fp["b"].Source != "publisher" {
		t.Fatalf("fleet paths after set: %v", fp)
	}
	if _, ok := h.paths.Path("old"); ok {
		t.Fatal("paths.set left a path outside the set running")
	}
	wantCode(t, h.cmd(t, "paths.set", `{"paths":{"demo":{"source":"demo"}}}`), uplink.CodeReadOnly)
	wantCode(t, h.cmd(t, "paths.set", `{}`), uplink.CodeBadRequest)

	wantCode(t, h.cmd(t, "no.such", ""), uplink.CodeUnknownCommand)

	// Expired and not yet expired.
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	wantCode(t, h.send(t, "ping", "exp1", fmt.Sprintf(`{"id":"exp1","expiresAt":%q}`, past)), uplink.CodeExpired)
	wantOK(t, h.send(t, "ping", "exp2", fmt.Sprintf(`{"id":"exp2","expiresAt":%q}`, future)))

	// Oversized.
	big := fmt.Sprintf(`{"id":"big1","args":{"pad":%q}}`, strings.Repeat("x", uplink.MaxCommandBytes))
	wantCode(t, h.send(t, "ping", "big1", big), uplink.CodeTooLarge)

	// Broadcast form.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.fleet.Publish(ctx, "camgate/all/cmd/ping", []byte(`{"id":"bc1"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if e, err := h.store.Command("bc1"); err == nil && e.State == store.CommandDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broadcast command not journaled")
		}
		time.Sleep(10 * time.Millisecond) // no event reaches the test for a reply it did not subscribe to
	}

	// agent.restart: replied first, then the restart hook runs.
	wantOK(t, h.cmd(t, "agent.restart", ""))
	deadline = time.Now().Add(2 * time.Second)
	for h.restarted.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("restart not requested after agent.restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDuplicateIDNotExecutedTwice(t *testing.T) {
	h := newHarness(t)
	payload := `{"id":"dup-1","args":{"name":"camx","conf":{"source":"demo"}}}`
	first := h.send(t, "paths.add", "dup-1", payload)
	wantOK(t, first)
	adds := h.paths.count("add")
	second := h.send(t, "paths.add", "dup-1", payload) // a QoS 1 redelivery or a fleet retry
	wantOK(t, second)                                  // not "conflict": the stored reply
	if h.paths.count("add") != adds {
		t.Fatal("repeated id executed again")
	}
	if string(first.Result) != string(second.Result) {
		t.Fatalf("stored reply differs:\n%s\n%s", first.Result, second.Result)
	}
	// A command interrupted by a crash (journaled, never finished) is not
	// run again either.
	if _, _, err := h.store.BeginCommand("crash-1", "paths.add"); err != nil {
		t.Fatal(err)
	}
	r := h.send(t, "paths.add", "crash-1", `{"id":"crash-1","args":{"name":"camy","conf":{"source":"demo"}}}`)
	wantCode(t, r, uplink.CodeInternal)
	if _, ok := h.paths.Path("camy"); ok {
		t.Fatal("interrupted command was run on redelivery")
	}
}

func TestPanickingHandlerBecomesInternalError(t *testing.T) {
	h := newHarness(t)
	wantOK(t, h.cmd(t, "paths.add", `{"name":"boom","conf":{"source":"demo"}}`))
	r := h.cmd(t, "path.restart", `{"name":"boom"}`)
	wantCode(t, r, uplink.CodeInternal)
	if strings.Contains(r.Error.Message, "hunter2") {
		t.Fatalf("panic text leaked: %s", r.Error.Message)
	}
	wantOK(t, h.cmd(t, "ping", "")) // still alive
}

// garbage is a table of malformed command payloads: rejected ones carry
// no usable id (a cmd.rejected event, no reply); the others get bad_request.
var garbage = []struct {
	name     string
	cmd      string
	payload  string
	rejected bool
}{
	{"empty", "ping", "", true},
	{"text", "ping", "not json", true},
	{"truncated", "ping", `{"id":"g1"`, true},
	{"array", "ping", `[]`, true},
	{"null", "ping", `null`, true},
	{"number", "ping", `42`, true},
	{"string", "ping", `"ping"`, true},
	{"no id", "ping", `{}`, true},
	{"empty id", "ping", `{"id":""}`, true},
	{"numeric id", "ping", `{"id":5}`, true},
	{"null id", "ping", `{"id":null}`, true},
	{"slash id", "ping", `{"id":"a/b"}`, true},
	{"wildcard id", "ping", `{"id":"a+b"}`, true},
	{"control id", "ping", `{"id":"a\u0000b"}`, true},
	{"binary", "ping", "\xff\xfe\x00\x01", true},
	{"long id", "ping", fmt.Sprintf(`{"id":%q}`, strings.Repeat("i", 200)), true},
	{"args array", "ping", `{"id":"g2","args":[1,2]}`, false},
	{"args string", "ping", `{"id":"g3","args":"x"}`, false},
	{"expiresAt word", "ping", `{"id":"g4","expiresAt":"tomorrow"}`, false},
	{"expiresAt number", "ping", `{"id":"g5","expiresAt":5}`, false},
	{"unknown field", "ping", `{"id":"g6","extra":1}`, false},
	{"bad source", "paths.add", `{"id":"g7","args":{"name":"x","conf":{"source":"ftp://x"}}}`, false},
	{"bad name", "paths.add", `{"id":"g8","args":{"name":"../x","conf":{"source":"demo"}}}`, false},
	{"unknown conf key", "paths.add", `{"id":"g9","args":{"name":"x","conf":{"source":"demo","bogus":1}}}`, false},
	{"wrong arg type", "path.restart", `{"id":"g10","args":{"name":5}}`, false},
	{"misspelt arg", "path.restart", `{"id":"g11","args":{"nam":"x"}}`, false},
	{"bad duration", "paths.add", `{"id":"g12","args":{"name":"x","conf":{"source":"demo","readTimeout":"soon"}}}`, false},
}

func TestGarbagePayloads(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rejected := 0
	for _, g := range garbage {
		if g.rejected {
			if err := h.fleet.Publish(ctx, "camgate/cg-h/cmd/"+g.cmd, []byte(g.payload)); err != nil {
				t.Fatal(err)
			}
			rejected++
			continue
		}
		var id struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(g.payload), &id)
		if id.ID == "" {
			// Truncated JSON with an id-like prefix: no id is readable.
			t.Fatalf("%s: table entry must carry a readable id", g.name)
		}
		wantCode(t, h.send(t, g.cmd, id.ID, g.payload), uplink.CodeBadRequest)
	}
	seen := 0
	for seen < rejected {
		h.waitMsg(t, func(m fleet.Msg) bool {
			return m.Kind == uplink.KindEvents && strings.Contains(string(m.Payload), `"cmd.rejected"`)
		})
		seen++
	}
	wantOK(t, h.cmd(t, "ping", ""))
	if len(garbage) < 15 {
		t.Fatalf("garbage table has %d entries", len(garbage))
	}
}

// FuzzParseCommand feeds the garbage table and random input to the
// payload parser: it must never panic, and an id it returns is usable as a
// topic level.
func FuzzParseCommand(f *testing.F) {
	for _, g := range garbage {
		f.Add([]byte(g.payload))
	}
	f.Add([]byte(`{"id":"ok","args":{},"expiresAt":"2030-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, cmd, perr := parseCommand(b)
		if id != "" && (strings.ContainsAny(id, "+#/") || len(id) > maxCommandID) {
			t.Fatalf("unusable id %q accepted", id)
		}
		if id == "" && perr == nil {
			t.Fatal("no id and no error")
		}
		if perr == nil && cmd.ID != id {
			t.Fatal("id mismatch")
		}
	})
}
