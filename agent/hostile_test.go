package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/api"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
)

// TestMQTTBadPathNames: every path command refuses names outside the
// path-name rule with bad_request and a short message, before the path
// manager or the store sees them.
func TestMQTTBadPathNames(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("a", 2048)
	for _, name := range []string{"../../etc/passwd", "nul\x00byte", long, "a//b", "/abs"} {
		n, _ := json.Marshal(name)
		for cmd, args := range map[string]string{
			"paths.add":    fmt.Sprintf(`{"name":%s,"conf":{"source":"demo"}}`, n),
			"paths.update": fmt.Sprintf(`{"name":%s,"conf":{"source":"demo"}}`, n),
			"paths.remove": fmt.Sprintf(`{"name":%s}`, n),
			"path.restart": fmt.Sprintf(`{"name":%s}`, n),
			"paths.set":    fmt.Sprintf(`{"paths":{%s:{"source":"demo"}}}`, n),
		} {
			r := h.cmd(t, cmd, args)
			wantCode(t, r, uplink.CodeBadRequest)
			if !strings.Contains(r.Error.Message, "invalid path name") || len(r.Error.Message) > 200 {
				t.Errorf("%s %.20q: message %q", cmd, name, r.Error.Message)
			}
		}
	}
	for _, op := range []string{"add", "update", "set", "remove", "restart"} {
		if n := h.paths.count(op); n != 0 {
			t.Errorf("path manager saw %d %s calls", n, op)
		}
	}
	if fp, _ := h.store.FleetPaths(); len(fp) != 0 {
		t.Fatalf("stored %v", fp)
	}
}

// TestHealthNeverOKWithADeadListener: the health document lists every
// listener; one that is not up makes it not ok, and /metrics counts accept
// errors and refusals per listener.
func TestHealthNeverOKWithADeadListener(t *testing.T) {
	st := storetest.New(t, store.Options{})
	stats := []guard.Stats{
		{Name: "rtsp", Addr: ":8554", State: guard.StateUp, Open: 3, AcceptErrors: 7, RefusedMaxConnsPerIP: 2},
		{Name: "api", Addr: "127.0.0.1:9997", State: guard.StateUp},
	}
	h := &healthSource{id: "cg-1", store: st, paths: listPaths{}, listeners: func() []guard.Stats { return stats },
		pending: func() (int, uint64) { return 4, 9 }, webrtcDropped: func() uint64 { return 5 }}
	doc := h.snapshot(context.Background())
	if !doc.OK || len(doc.Listeners) != 2 || doc.Listeners[0].Refused != 2 || doc.Listeners[0].State != "up" {
		t.Fatalf("all up: %+v", doc)
	}
	stats[1].State, stats[1].Err = guard.StateDown, "accept tcp: invalid argument"
	doc = h.snapshot(context.Background())
	if doc.OK || doc.Listeners[1].State != "down" || doc.Listeners[1].Error == "" {
		t.Fatalf("api down: %+v", doc)
	}
	b, _ := json.Marshal(doc)
	if !bytes.Contains(b, []byte(`"ok":false`)) {
		t.Fatalf("document %s", b)
	}
	var text bytes.Buffer
	if err := api.WriteText(&text, h.Metrics(context.Background())); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`camgate_listener_accept_errors_total{listener="rtsp"} 7`,
		`camgate_listener_refused_total{listener="rtsp",reason="max_connections_per_ip"} 2`,
		`camgate_listener_refused_total{listener="rtsp",reason="max_connections"} 0`,
		`camgate_listener_connections{listener="rtsp"} 3`,
		`camgate_listener_up{listener="api"} 0`,
		`camgate_listener_up{listener="rtsp"} 1`,
		`camgate_webrtc_pending_sessions 4`,
		`camgate_webrtc_pending_refused_total 9`,
		`camgate_webrtc_send_dropped_total 5`,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestHealthListsTheListeners: a running agent reports its RTSP, API and
// playback listeners up; the playback listener has the caps of its config
// keys, and its refusals show in health and /metrics; the API refuses a
// rebinding attempt.
func TestHealthListsTheListeners(t *testing.T) {
	file, _, apiAddr := fleetConfig(t, t.TempDir(), "", "")
	playback := freePort(t)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "playback:\n  address: \"\"",
		"playback:\n  address: "+playback+"\n  maxConnections: 8\n  maxConnectionsPerIP: 1", 1))
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startAgent(t, file, &testlog.Buffer{})
	health := func() (int, uplink.Health) {
		t.Helper()
		resp, err := http.Get("http://" + apiAddr + "/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc uplink.Health
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, doc
	}
	listener := func(doc uplink.Health, name string) uplink.ListenerHealth {
		for _, l := range doc.Listeners {
			if l.Name == name {
				return l
			}
		}
		return uplink.ListenerHealth{}
	}
	code, doc := health()
	if code != http.StatusOK || !doc.OK {
		t.Fatalf("health %d ok=%v", code, doc.OK)
	}
	names := map[string]string{}
	for _, l := range doc.Listeners {
		names[l.Name] = l.State
	}
	if names["rtsp"] != "up" || names["api"] != "up" || names["playback"] != "up" || len(names) != 3 {
		t.Fatalf("listeners %+v", doc.Listeners)
	}

	// One idle connection fills 127.0.0.1's share of the playback
	// listener; the next one gets 429 at once.
	testcam.DialFrom(t, "127.0.0.1", playback)
	deadline := time.Now().Add(5 * time.Second)
	for _, doc := health(); listener(doc, "playback").Connections != 1; _, doc = health() {
		if time.Now().After(deadline) {
			t.Fatalf("playback %+v", listener(doc, "playback"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := testcam.DialFrom(t, "127.0.0.1", playback)
	_, _ = io.WriteString(c, "GET /list?path=cam HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := testcam.ReadUntilClosed(t, c, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 429 ") {
		t.Fatalf("over playback.maxConnectionsPerIP: %q", got)
	}
	if code, doc = health(); code != http.StatusOK || !doc.OK || listener(doc, "playback").Refused != 1 {
		t.Fatalf("health %d after a refusal: %+v", code, listener(doc, "playback"))
	}
	resp, err := http.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`camgate_listener_up{listener="playback"} 1`,
		`camgate_listener_connections{listener="playback"} 1`,
		`camgate_listener_refused_total{listener="playback",reason="max_connections_per_ip"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/paths/x", strings.NewReader(`{"source":"demo"}`))
	req.Host = "rebind.example"
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rebinding: %d %s", resp.StatusCode, body)
	}
}
