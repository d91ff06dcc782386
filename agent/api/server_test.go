package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camgate/camgate/agent/api"
	"github.com/camgate/camgate/uplink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCommands records calls and answers from a table.
type fakeCommands struct {
	calls []string
	fn    func(name string, args json.RawMessage) (json.RawMessage, *uplink.Error)
}

func (f *fakeCommands) Call(_ context.Context, name string, args json.RawMessage) (json.RawMessage, *uplink.Error) {
	f.calls = append(f.calls, name+" "+string(args))
	return f.fn(name, args)
}

type fakeMetrics []api.Family

func (f fakeMetrics) Metrics(context.Context) []api.Family { return f }

func newServer(t *testing.T, c *fakeCommands, m api.Metrics) *httptest.Server {
	t.Helper()
	s, err := api.New(api.Options{Address: "127.0.0.1:0", Commands: c, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutesShareTheCommandTable(t *testing.T) {
	existing := map[string]bool{"cam1": true}
	c := &fakeCommands{fn: func(name string, args json.RawMessage) (json.RawMessage, *uplink.Error) {
		var a struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(args, &a)
		switch name {
		case "status":
			return json.RawMessage(`{"agent":{"id":"cg-1"}}`), nil
		case "config.get":
			return json.RawMessage(`{"uplink":{"password":"***"}}`), nil
		case "paths.list":
			return json.RawMessage(`{"paths":[{"name":"cam1","origin":"fleet"},{"name":"demo","origin":"file"}]}`), nil
		case "paths.update":
			if a.Name == "demo" {
				return nil, &uplink.Error{Code: uplink.CodeReadOnly, Message: "file path"}
			}
			if !existing[a.Name] {
				return nil, &uplink.Error{Code: uplink.CodeNotFound, Message: "no"}
			}
			return json.RawMessage(`{"name":"` + a.Name + `"}`), nil
		case "paths.add":
			existing[a.Name] = true
			return json.RawMessage(`{"name":"` + a.Name + `"}`), nil
		case "agent.update":
			if strings.Contains(string(args), `"busy"`) {
				return nil, &uplink.Error{Code: uplink.CodeConflict, Message: "in progress"}
			}
			if strings.Contains(string(args), `"v1"`) {
				return json.RawMessage(`{"noop":true,"running":"v1"}`), nil
			}
			return json.RawMessage(`{"accepted":true,"version":"v2","running":"v1"}`), nil
		case "paths.remove":
			if !existing[a.Name] {
				return nil, &uplink.Error{Code: uplink.CodeNotFound, Message: "no"}
			}
			return json.RawMessage(`{}`), nil
		}
		return nil, &uplink.Error{Code: uplink.CodeUnknownCommand, Message: name}
	}}
	ts := newServer(t, c, nil)
	cases := []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"GET", "/v1/health", "", 200, `"cg-1"`},
		{"POST", "/v1/agent/update", `{"version":"v2"}`, 202, `"accepted":true`},
		{"POST", "/v1/agent/update", `{"version":"v1"}`, 200, `"noop":true`},
		{"POST", "/v1/agent/update", `{"version":"busy"}`, 409, `"conflict"`},
		{"POST", "/v1/agent/update", `{not json`, 400, `"bad_request"`},
		{"GET", "/v1/config", "", 200, `"***"`},
		{"GET", "/v1/paths", "", 200, `"demo"`},
		{"GET", "/v1/paths/cam1", "", 200, `"origin":"fleet"`},
		{"GET", "/v1/paths/nope", "", 404, `"not_found"`},
		{"POST", "/v1/paths/cam1", `{"source":"demo"}`, 200, `"cam1"`},
		{"POST", "/v1/paths/new", `{"source":"demo"}`, 201, `"new"`},
		{"POST", "/v1/paths/demo", `{"source":"demo"}`, 403, `"read_only"`},
		{"POST", "/v1/paths/x", `{not json`, 400, `"bad_request"`},
		{"POST", "/v1/paths/x", `{"pad":"` + strings.Repeat("x", uplink.MaxCommandBytes) + `"}`, 413, `"too_large"`},
		{"DELETE", "/v1/paths/new", "", 204, ""},
		{"DELETE", "/v1/paths/new2", "", 404, `"not_found"`},
		{"PUT", "/v1/paths/x", "", 405, ""},
		{"GET", "/v1/unknown", "", 404, ""},
	}
	for _, tc := range cases {
		code, body := do(t, tc.method, ts.URL+tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.contains)
		}
	}
	// POST hands the body to the same command as the MQTT side.
	found := false
	for _, call := range c.calls {
		if strings.HasPrefix(call, `paths.add {"conf":{"source":"demo"},"name":"new"}`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("paths.add not called with name and conf: %v", c.calls)
	}
}

func TestMetricsText(t *testing.T) {
	m := fakeMetrics{
		{Name: "camgate_b", Help: "second", Type: api.Gauge, Samples: []api.Sample{{Value: 2.5}}},
		{Name: "camgate_a_total", Help: "with \\ and\nnewline", Type: api.Counter, Samples: []api.Sample{
			{Labels: []api.Label{{Name: "path", Value: `we"ird\path`}}, Value: 1e9},
			{Labels: []api.Label{{Name: "path", Value: "cam1"}, {Name: "state", Value: "ready"}}, Value: 0},
		}},
	}
	ts := newServer(t, &fakeCommands{}, m)
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	want := `# HELP camgate_a_total with \\ and\nnewline
# TYPE camgate_a_total counter
camgate_a_total{path="we\"ird\\path"} 1e+09
camgate_a_total{path="cam1",state="ready"} 0
# HELP camgate_b second
# TYPE camgate_b gauge
camgate_b 2.5
`
	if string(body) != want {
		t.Fatalf("metrics:\n%s\nwant:\n%s", body, want)
	}
}

func TestNewAndRun(t *testing.T) {
	if _, err := api.New(api.Options{}); err == nil {
		t.Fatal("New without address")
	}
	s, err := api.New(api.Options{Address: "127.0.0.1:0", Commands: &fakeCommands{fn: func(string, json.RawMessage) (json.RawMessage, *uplink.Error) {
		return json.RawMessage(`{"pong":true}`), nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.New(api.Options{Address: s.Addr()}); err == nil {
		t.Fatal("second listener on a busy port")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	resp, err := http.Post("http://"+s.Addr()+"/v1/paths/x", "application/json", bytes.NewBufferString(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !api.IsLoopback("127.0.0.1:9997") || !api.IsLoopback("[::1]:1") || !api.IsLoopback("localhost:1") || api.IsLoopback(":9997") || api.IsLoopback("0.0.0.0:1") {
		t.Fatal("IsLoopback")
	}
}

func TestAuthorize(t *testing.T) {
	s, err := api.New(api.Options{Address: "127.0.0.1:0", Commands: &fakeCommands{fn: func(string, json.RawMessage) (json.RawMessage, *uplink.Error) {
		return json.RawMessage(`{}`), nil
	}}, Authorize: func(r *http.Request) *api.Refusal {
		u, p, ok := r.BasicAuth()
		switch {
		case !ok:
			return &api.Refusal{Status: http.StatusUnauthorized}
		case u == "ops" && p == "pw":
			return nil
		case u == "eve":
			return &api.Refusal{Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond}
		}
		return &api.Refusal{Status: http.StatusForbidden}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for creds, want := range map[string]int{"ops:pw": 200, "ops:nope": 403, "eve:x": 429} {
		req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
		u, p, _ := strings.Cut(creds, ":")
		req.SetBasicAuth(u, p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", creds, resp.StatusCode, want)
		}
		if ra := resp.Header.Get("Retry-After"); (want == 429) != (ra == "2") {
			t.Fatalf("%s: Retry-After %q", creds, ra)
		}
	}
}

func TestHealthNotOKIs503(t *testing.T) {
	for doc, want := range map[string]int{`{"ok":true}`: 200, `{"ok":false,"listeners":[{"name":"rtsp","state":"down"}]}`: 503, `{}`: 200} {
		ts := newServer(t, &fakeCommands{fn: func(string, json.RawMessage) (json.RawMessage, *uplink.Error) {
			return json.RawMessage(doc), nil
		}}, nil)
		code, body := do(t, "GET", ts.URL+"/v1/health", "")
		if code != want || !strings.Contains(body, doc) {
			t.Errorf("%s: %d %q, want %d", doc, code, body, want)
		}
	}
}
