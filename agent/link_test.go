package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// fleetConfig writes an agent config with the uplink on broker, the API on
// a free loopback port and health every second; it returns the file, the
// RTSP address and the API address.
func fleetConfig(t *testing.T, dataDir, broker, extra string) (file, rtsp, apiAddr string) {
	t.Helper()
	rtsp, apiAddr = freePort(t), freePort(t)
	body := fmt.Sprintf(`agent:
  id: cg-e2e
  dataDir: %s
  logLevel: debug
rtsp:
  address: %s
  transports: [tcp]
webrtc:
  address: ""
hls:
  address: ""
api:
  address: %s
playback:
  address: ""
uplink:
  broker: %s
  healthInterval: 1s
%s`, dataDir, rtsp, apiAddr, broker, extra)
	file = filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, rtsp, apiAddr
}

// collector keeps every health and event seq seen, and the statuses.
type collector struct {
	ch   <-chan fleet.Msg
	seqs []uint64
}

func collect(t *testing.T, f *fleet.Client, id string) *collector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, stop, err := f.Subscribe(ctx, id, 100000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &collector{ch: ch}
}

// until reads messages until match returns true.
func (c *collector) until(t *testing.T, what string, match func(fleet.Msg) bool) fleet.Msg {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-c.ch:
			if m.Seq > 0 {
				c.seqs = append(c.seqs, m.Seq)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within 15s", what)
		}
	}
}

func isStatus(state, reason string) func(fleet.Msg) bool {
	return func(m fleet.Msg) bool {
		if m.Kind != "status" {
			return false
		}
		var st uplink.Status
		_ = json.Unmarshal(m.Payload, &st)
		return st.State == state && st.Reason == reason
	}
}

func isEvent(typ string) func(fleet.Msg) bool {
	return func(m fleet.Msg) bool {
		return m.Kind == uplink.KindEvents && strings.Contains(string(m.Payload), `"type":"`+typ+`"`)
	}
}

func fleetCmd(t *testing.T, f *fleet.Client, name, args string) uplink.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.Command(ctx, "cg-e2e", name, json.RawMessage(args))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// TestFleetEndToEnd runs the real agent against an in-process broker: birth,
// health and events through the outbox, paths.add then an RTSP read of the
// new path, the local API and /metrics on the same handlers, a graceful
// stop, and a restart that restores the fleet path; the seqs of health and
// events together have no gap across both runs.
func TestFleetEndToEnd(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	dir := t.TempDir()
	file, rtsp, apiAddr := fleetConfig(t, dir, b.URL(), "")
	_, stop := startAgent(t, file, &testlog.Buffer{})

	col.until(t, "birth", isStatus(uplink.StateOnline, ""))
	col.until(t, "agent.started event", isEvent(uplink.EventAgentStarted))
	h := col.until(t, "health", func(m fleet.Msg) bool { return m.Kind == uplink.KindHealth })
	var doc uplink.Health
	if err := json.Unmarshal(h.Payload, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Agent.ID != "cg-e2e" || doc.Agent.BootCount != 1 || len(doc.Paths) == 0 || doc.Seq == 0 {
		t.Fatalf("health %s", h.Payload)
	}

	r := fleetCmd(t, f, "paths.add", `{"name":"cam9","conf":{"source":"demo"}}`)
	if !r.OK {
		t.Fatalf("paths.add: %+v", r.Error)
	}
	rd, err := testcam.Read(t, "rtsp://"+rtsp+"/cam9", false)
	if err != nil {
		t.Fatalf("read the fleet path: %v", err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	col.until(t, "path.ready event for cam9", func(m fleet.Msg) bool {
		return isEvent("path.ready")(m) && strings.Contains(string(m.Payload), `"cam9"`)
	})

	// The local API shares the handlers.
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + apiAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/v1/paths/cam9"); code != 200 || !strings.Contains(body, `"origin":"fleet"`) {
		t.Fatalf("GET /v1/paths/cam9: %d %s", code, body)
	}
	if code, body := get("/v1/paths/demo"); code != 200 || !strings.Contains(body, `"origin":"file"`) {
		t.Fatalf("GET /v1/paths/demo: %d %s", code, body)
	}
	if code, _ := get("/v1/paths/nope"); code != 404 {
		t.Fatalf("GET /v1/paths/nope: %d", code)
	}
	if code, body := get("/v1/health"); code != 200 || !strings.Contains(body, `"cg-e2e"`) {
		t.Fatalf("GET /v1/health: %d %s", code, body)
	}
	resp, err := http.Post("http://"+apiAddr+"/v1/paths/api1", "application/json", bytes.NewBufferString(`{"source":"publisher"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/paths/api1: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	resp, err = http.Post("http://"+apiAddr+"/v1/paths/demo", "application/json", bytes.NewBufferString(`{"source":"publisher"}`))
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST /v1/paths/demo (file path): %v %v", err, resp.Status)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+apiAddr+"/v1/paths/api1", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /v1/paths/api1: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	code, metrics := get("/metrics")
	for _, want := range []string{`camgate_path_bytes_out_total{path="cam9"}`, "camgate_uplink_connected 1", "camgate_outbox_depth", "# TYPE camgate_path_readers gauge"} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	rd.Close()

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	col.until(t, "agent.stopping event", isEvent(uplink.EventAgentStopping))
	col.until(t, "shutdown status", isStatus(uplink.StateOffline, uplink.ReasonShutdown))

	// Second run on the same data directory: the fleet path is back.
	file2, rtsp2, _ := fleetConfig(t, dir, b.URL(), "")
	_, stop2 := startAgent(t, file2, &testlog.Buffer{})
	col.until(t, "second birth", isStatus(uplink.StateOnline, ""))
	r = fleetCmd(t, f, "paths.list", "")
	if !r.OK || !strings.Contains(string(r.Result), `"name":"cam9","origin":"fleet"`) {
		t.Fatalf("paths.list after restart: %s", r.Result)
	}
	rd2, err := testcam.Read(t, "rtsp://"+rtsp2+"/cam9", false)
	if err != nil {
		t.Fatalf("read the restored fleet path: %v", err)
	}
	rd2.WaitPackets(t, 10, 5*time.Second)
	rd2.Close()
	// One more health after the restart, then check the union of seqs.
	col.until(t, "health of boot 2", func(m fleet.Msg) bool {
		return m.Kind == uplink.KindHealth && strings.Contains(string(m.Payload), `"bootCount":2`)
	})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	col.until(t, "second shutdown", isStatus(uplink.StateOffline, uplink.ReasonShutdown))
	noGap(t, col.seqs)
}

// noGap checks that the first occurrences of seqs are 1..max in order.
func noGap(t *testing.T, seqs []uint64) {
	t.Helper()
	seen := map[uint64]bool{}
	var next uint64 = 1
	for _, s := range seqs {
		if seen[s] {
			continue
		}
		if s != next {
			t.Fatalf("seq %d arrived when %d was due", s, next)
		}
		seen[s] = true
		next++
	}
	if next < 3 {
		t.Fatalf("only %d seqs seen", next-1)
	}
}

func TestFleetCLI(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	file, _, _ := fleetConfig(t, t.TempDir(), b.URL(), "")
	startAgent(t, file, &testlog.Buffer{})
	col.until(t, "birth", isStatus(uplink.StateOnline, ""))

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		code := fleetMain(ctx, append([]string{"-broker", b.URL()}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := run("ls", "-listen", "500ms"); code != 0 || !strings.Contains(out, "cg-e2e") || !strings.Contains(out, "online") {
		t.Fatalf("ls: %d %q %q", code, out, errOut)
	}
	if code, out, _ := run("status", "cg-e2e"); code != 0 || !strings.Contains(out, `"state": "online"`) {
		t.Fatalf("status: %d %q", code, out)
	}
	if code, out, _ := run("cmd", "cg-e2e", "ping"); code != 0 || !strings.Contains(out, `"pong": true`) {
		t.Fatalf("cmd ping: %d %q", code, out)
	}
	if code, out, _ := run("cmd", "cg-e2e", "paths.remove", `{"name":"demo"}`); code != 1 || !strings.Contains(out, "read_only") {
		t.Fatalf("cmd paths.remove demo: %d %q", code, out)
	}
	if code, _, _ := run("cmd", "cg-e2e", "ping", "{not json"); code != 2 {
		t.Fatalf("bad JSON args: exit %d", code)
	}
	if code, _, _ := run("bogus"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
	if code, _, errOut := run("status", "cg-nobody"); code != 1 || !strings.Contains(errOut, "no status") {
		t.Fatalf("status of unknown agent: %d %q", code, errOut)
	}
	// watch prints health as it comes; stop it with its context.
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if code := fleetMain(ctx, []string{"-broker", b.URL(), "watch", "cg-e2e"}, &out, io.Discard); code != 0 {
		t.Fatalf("watch exit %d", code)
	}
	if !strings.Contains(out.String(), "cg-e2e health {") {
		t.Fatalf("watch printed no health in 1.5s:\n%s", out.String())
	}
}

// TestAPIUsesTheAPIPermission: with auth.users giving "api" only to a named
// user, the local API asks for credentials and accepts that user's.
func TestAPIUsesTheAPIPermission(t *testing.T) {
	file, _, apiAddr := fleetConfig(t, t.TempDir(), "", `auth:
  users:
    - {user: any, pass: "", permissions: [{action: read}]}
    - {user: ops, pass: s3cret, permissions: [{action: api}]}
`)
	startAgent(t, file, &testlog.Buffer{})
	get := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+"/v1/health", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", code)
	}
	if code := get("ops", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := get("ops", "s3cret"); code != http.StatusOK {
		t.Fatalf("ops: %d", code)
	}
}

// TestAPIGuessingIsThrottledAndReportedOnce: 300 wrong API passwords from
// 127.0.0.1 are checked five times, then answered 429 with Retry-After;
// the fleet gets at most a few api.denied events whose counts add up to
// every refusal (the last one flushed at shutdown), and as many log
// lines; no password reaches the log; the right password from 127.0.0.2
// is let in meanwhile, and a /metrics scrape shows the counters.
func TestAPIGuessingIsThrottledAndReportedOnce(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	file, _, apiAddr := fleetConfig(t, t.TempDir(), b.URL(), `auth:
  users:
    - {user: ops, pass: s3cret, permissions: [{action: api}]}
`)
	logs := &testlog.Buffer{}
	_, stop := startAgent(t, file, logs)
	col.until(t, "agent.started event", isEvent(uplink.EventAgentStarted))

	var body bytes.Buffer
	do := func(hc *http.Client, path, pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+path, nil)
		req.SetBasicAuth("ops", pass)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body.Reset()
		_, _ = io.Copy(&body, resp.Body)
		resp.Body.Close()
		return resp
	}
	const guesses = 300
	codes := map[int]int{}
	for i := 0; i < guesses; i++ {
		resp := do(http.DefaultClient, "/v1/health", fmt.Sprintf("guess-%d", i))
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[http.StatusUnauthorized] < 5 || codes[http.StatusUnauthorized] > 8 || codes[http.StatusTooManyRequests] != guesses-codes[http.StatusUnauthorized] {
		t.Fatalf("answers %v: want 5 to 8 checked (401), the rest 429", codes)
	}
	if code := do(http.DefaultClient, "/v1/health", "s3cret").StatusCode; code != http.StatusTooManyRequests {
		t.Fatalf("right password from the throttled address: %d, want 429", code)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	other := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer other.CloseIdleConnections()
	resp := do(other, "/metrics", "s3cret")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("right password from 127.0.0.2: %d", resp.StatusCode)
	}
	if want := fmt.Sprintf("camgate_auth_throttled_total %d\n", codes[http.StatusTooManyRequests]+1); !strings.Contains(body.String(), want) {
		t.Fatalf("/metrics lacks %q:\n%s", want, body.String())
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	total, events := 0, 0
	for total < guesses+1 {
		m := col.until(t, fmt.Sprintf("api.denied events counting %d refusals (got %d)", guesses+1, total), isEvent(uplink.EventAPIDenied))
		var ev struct {
			Detail struct {
				IP    string `json:"ip"`
				Count int    `json:"count"`
			} `json:"detail"`
		}
		if err := json.Unmarshal(m.Payload, &ev); err != nil || ev.Detail.IP != "127.0.0.1" {
			t.Fatalf("event %s: %v", m.Payload, err)
		}
		total += ev.Detail.Count
		events++
	}
	if total != guesses+1 || events > 3 {
		t.Fatalf("%d api.denied events counting %d refusals; want at most 3 counting %d", events, total, guesses+1)
	}
	out := logs.String()
	if n := strings.Count(out, `"type":"api.denied"`); n != events {
		t.Fatalf("%d api.denied log lines for %d events", n, events)
	}
	if strings.Contains(out, "guess-1") || strings.Contains(out, "s3cret") {
		t.Fatal("a password reached the log")
	}
}

// TestFleetRemoveClosesReaders: paths.remove over MQTT disconnects the
// path's readers and the name stops resolving.
func TestFleetRemoveClosesReaders(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	file, rtsp, _ := fleetConfig(t, t.TempDir(), b.URL(), "")
	logs := &testlog.Buffer{}
	startAgent(t, file, logs)
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	col.until(t, "birth", isStatus(uplink.StateOnline, ""))
	if r := fleetCmd(t, f, "paths.add", `{"name":"gone","conf":{"source":"demo"}}`); !r.OK {
		t.Fatalf("paths.add: %+v", r.Error)
	}
	rd, err := testcam.Read(t, "rtsp://"+rtsp+"/gone", false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 5, 5*time.Second)
	if r := fleetCmd(t, f, "paths.remove", `{"name":"gone"}`); !r.OK {
		t.Fatalf("paths.remove: %+v", r.Error)
	}
	select {
	case <-rd.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("reader still connected after paths.remove")
	}
	if _, err := testcam.Read(t, "rtsp://"+rtsp+"/gone", false); err == nil {
		t.Fatal("removed path still readable")
	}
}
