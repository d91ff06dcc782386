package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/uplink"
)

// dispatchFuzz drives the dispatcher directly (no broker) with a temp
// store and the fake path manager, and checks every outcome: a payload
// without a usable id raises exactly one cmd.rejected event and gets no
// reply; every other payload gets a well-formed reply naming its id and
// command, ok or with an error code, the same bytes when its id is
// repeated, and never the config file's camera password.
type dispatchFuzz struct {
	d       *dispatcher
	st      *store.Store
	names   []string          // command names, the last one unknown
	replies map[string][]byte // id -> first reply, for the repeat property
	seq     int
}

const fuzzSecret = "s3cret"

func newDispatchFuzz(tb testing.TB) *dispatchFuzz {
	tb.Helper()
	cfg, err := conf.Load("", nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Paths["cam1"] = conf.PathConf{Source: conf.SecretURL("rtsp://admin:" + fuzzSecret + "@10.0.0.64:554/ch1")}
	log := zerolog.Nop()
	z := &dispatchFuzz{st: storetest.New(tb, store.Options{}), replies: map[string][]byte{}}
	z.d = newDispatcher(&dispatcher{
		log: log, store: z.st, paths: newFakePaths("demo", "cam1"), cfg: cfg,
		events:  newEventSink(log, true),
		health:  func(context.Context) uplink.Health { return uplink.Health{Agent: uplink.AgentHealth{ID: "cg-f"}} },
		restart: func() {},
		now:     func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) },
	})
	for n := range z.d.handlers {
		z.names = append(z.names, n)
	}
	sort.Strings(z.names)
	z.names = append(z.names, "no.such.command")
	return z
}

// payload builds the command's payload: body as it is, or (wrap) body as
// the args of an envelope with a fresh id, so the fuzzer spends its time
// on the arguments.
func (z *dispatchFuzz) payload(body []byte, wrap bool) []byte {
	if !wrap {
		return body
	}
	z.seq++
	return fmt.Appendf(nil, `{"id":"fz-%d","args":%s}`, z.seq, body)
}

// run dispatches one command and checks the outcome; it returns the
// reply (nil for a rejected payload).
func (z *dispatchFuzz) run(t *testing.T, name string, payload []byte) *uplink.Reply {
	t.Helper()
	// Fleet paths from earlier inputs would make the outcome depend on
	// the order of inputs; the journal is kept (the repeat property).
	if err := z.st.SetFleetPaths(map[string]conf.PathConf{}); err != nil {
		t.Fatal(err)
	}
	z.d.paths = newFakePaths("demo", "cam1")
	for drained := false; !drained; {
		select {
		case <-z.d.events.ch:
		default:
			drained = true
		}
	}
	// The journal keeps the newest journalMaxCount ids: one it has pruned
	// runs again as a new command, rightly.
	if id, _, _ := parseCommand(payload); id != "" {
		if _, err := z.st.Command(id); errors.Is(err, store.ErrNotFound) {
			delete(z.replies, id)
		}
	}
	id, reply, _ := z.d.handleMQTT(context.Background(), uplink.Incoming{Name: name, Payload: payload})
	var rejected int
	for drained := false; !drained; {
		select {
		case ev := <-z.d.events.ch:
			if ev.Type == uplink.EventCmdRejected {
				rejected++
			}
		default:
			drained = true
		}
	}
	if id == "" {
		if reply != nil {
			t.Fatalf("reply without an id: %s", reply)
		}
		if rejected != 1 {
			t.Fatalf("payload without a usable id: %d cmd.rejected events, want 1", rejected)
		}
		return nil
	}
	if rejected != 0 {
		t.Fatalf("payload with id %q also raised cmd.rejected", id)
	}
	var r uplink.Reply
	dec := json.NewDecoder(bytes.NewReader(reply))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("reply is not a Reply: %v\n%s", err, reply)
	}
	if r.ID != id {
		t.Fatalf("reply id %q, want %q", r.ID, id)
	}
	if prev, ok := z.replies[id]; ok {
		if !bytes.Equal(prev, reply) {
			t.Fatalf("repeated id %q: reply changed\nfirst: %s\nnow:   %s", id, prev, reply)
		}
		return &r
	}
	z.replies[id] = bytes.Clone(reply)
	if r.Cmd != name {
		t.Fatalf("reply names command %q, want %q", r.Cmd, name)
	}
	if r.OK != (r.Error == nil) {
		t.Fatalf("ok %v with error %+v", r.OK, r.Error)
	}
	if r.OK && len(r.Result) == 0 {
		t.Fatalf("ok reply without a result: %s", reply)
	}
	if !r.OK && (r.Error.Code == "" || r.Error.Message == "") {
		t.Fatalf("error without code or message: %s", reply)
	}
	if bytes.Contains(reply, []byte(fuzzSecret)) && !bytes.Contains(payload, []byte(fuzzSecret)) {
		t.Fatalf("reply leaks the camera password: %s", reply)
	}
	return &r
}

// dispatchCases feed TestDispatchCases and seed FuzzDispatch. code "" is
// an ok reply, "rejected" a payload without a usable id.
var dispatchCases = []struct {
	cmd, payload string
	wrap         bool // payload is the args of an envelope with a fresh id
	code         uplink.ErrorCode
}{
	{"ping", `{}`, true, ""},
	{"ping", `{"x":1}`, true, ""}, // ping ignores its args
	{"status", `null`, true, ""},
	{"config.get", `{}`, true, ""},
	{"paths.list", `{}`, true, ""},
	{"paths.add", `{"name":"f1","conf":{"source":"demo"}}`, true, ""},
	{"paths.add", `{"name":"f1","conf":{"source":"rtsp://u:p@127.0.0.1:554/s","sourceOnDemand":true,"rtspTransport":"tcp","maxReaders":3}}`, true, ""},
	{"paths.add", `{"name":"cam1","conf":{"source":"demo"}}`, true, uplink.CodeReadOnly},
	{"paths.add", `{"name":"../x","conf":{"source":"demo"}}`, true, uplink.CodeBadRequest},
	{"paths.add", `{"name":"x"}`, true, uplink.CodeBadRequest},
	{"paths.add", `{"name":"x","conf":{"source":"ftp://x"}}`, true, uplink.CodeBadRequest},
	{"paths.add", `{"name":"x","conf":{"source":"demo","readTimeout":"soon"}}`, true, uplink.CodeBadRequest},
	{"paths.update", `{"name":"nope","conf":{"source":"demo"}}`, true, uplink.CodeNotFound},
	{"paths.remove", `{"name":"nope"}`, true, uplink.CodeNotFound},
	{"paths.remove", `{"name":5}`, true, uplink.CodeBadRequest},
	{"paths.set", `{"paths":{"a":{"source":"demo"},"b/c":{"source":"publisher"}}}`, true, ""},
	{"paths.set", `{"paths":{}}`, true, ""},
	{"paths.set", `{}`, true, uplink.CodeBadRequest},
	{"paths.set", `{"paths":{"demo":{"source":"demo"}}}`, true, uplink.CodeReadOnly},
	{"path.restart", `{"name":"demo"}`, true, ""},
	{"path.restart", `{"name":"boom"}`, true, uplink.CodeInternal},
	{"path.restart", `{"nam":"x"}`, true, uplink.CodeBadRequest},
	{"path.restart", `{"name":"x"}`, true, uplink.CodeNotFound},
	{"agent.restart", `{}`, true, ""},
	{"agent.restart", `[]`, true, uplink.CodeBadRequest},
	{"no.such.command", `{}`, true, uplink.CodeUnknownCommand},
	{"ping", `{"id":"raw-1"}`, false, ""},
	{"ping", `{"id":"raw-2","expiresAt":"2020-01-01T00:00:00Z"}`, false, uplink.CodeExpired},
	{"ping", `{"id":"raw-3","expiresAt":"tomorrow"}`, false, uplink.CodeBadRequest},
	{"ping", `{"id":"raw-4","args":"x"}`, false, uplink.CodeBadRequest},
	{"ping", `{"id":"raw-5","extra":true}`, false, uplink.CodeBadRequest},
	{"ping", `{"id":"a/b"}`, false, "rejected"},
	{"ping", `{"id":""}`, false, "rejected"},
	{"ping", `{"id":7}`, false, "rejected"},
	{"ping", `{"args":{}}`, false, "rejected"},
	{"ping", `[1,2]`, false, "rejected"},
	{"ping", `{"id":"trunc`, false, "rejected"},
	{"ping", "", false, "rejected"},
}

func TestDispatchCases(t *testing.T) {
	z := newDispatchFuzz(t)
	for _, c := range dispatchCases {
		t.Run(c.cmd+" "+c.payload, func(t *testing.T) {
			r := z.run(t, c.cmd, z.payload([]byte(c.payload), c.wrap))
			switch {
			case c.code == "rejected":
				if r != nil {
					t.Fatalf("want rejected, got reply %+v", r)
				}
			case r == nil:
				t.Fatalf("rejected, want code %q", c.code)
			case c.code == "" && !r.OK:
				t.Fatalf("want ok, got %+v", r.Error)
			case c.code != "" && (r.OK || r.Error.Code != c.code):
				t.Fatalf("want %s, got ok=%v %+v", c.code, r.OK, r.Error)
			}
		})
	}
}

// FuzzDispatch sends arbitrary payloads to every command name (cmd picks
// one; the last is unknown). With wrap the input is the args object of an
// envelope with a fresh id.
func FuzzDispatch(f *testing.F) {
	z := newDispatchFuzz(f)
	index := map[string]uint8{}
	for i, n := range z.names {
		index[n] = uint8(i)
	}
	for _, c := range dispatchCases {
		f.Add(index[c.cmd], []byte(c.payload), c.wrap)
	}
	f.Fuzz(func(t *testing.T, cmd uint8, body []byte, wrap bool) {
		name := z.names[int(cmd)%len(z.names)]
		z.run(t, name, z.payload(body, wrap))
	})
}
