package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/api"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/uplink"
)

// The tests below attack the API as a web page in the box's browser, or
// a hostile LAN client, would: raw requests as curl sends them.

// countingCommands answers every command with {} and counts the calls.
type countingCommands struct {
	mu    sync.Mutex
	calls []string
}

func (c *countingCommands) Call(_ context.Context, name string, args json.RawMessage) (json.RawMessage, *uplink.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, name+" "+string(args))
	if name == "paths.update" {
		return nil, &uplink.Error{Code: uplink.CodeNotFound, Message: "no"}
	}
	return json.RawMessage(`{"paths":[]}`), nil
}

func (c *countingCommands) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// runServer runs a real API server (its own listener and timeouts) on
// 127.0.0.1.
func runServer(t *testing.T, o api.Options) *api.Server {
	t.Helper()
	o.Address = "127.0.0.1:0"
	s, err := api.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// raw sends one request as written and returns the status line and the
// whole answer.
func raw(t *testing.T, addr, src, req string) (string, string) {
	t.Helper()
	c := testcam.DialFrom(t, src, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	got := testcam.ReadUntilClosed(t, c, 5*time.Second)
	line, _, _ := strings.Cut(got, "\r\n")
	return line, got
}

func TestCrossSiteAndRebindingRefused(t *testing.T) {
	cmds := &countingCommands{}
	s := runServer(t, api.Options{Commands: cmds, AllowedHosts: []string{"Box.Example."}})
	addr := s.Addr()
	_, port, _ := strings.Cut(addr, ":")
	body := `{"source":"demo"}`
	post := func(headers string) string {
		return fmt.Sprintf("POST /v1/paths/cam HTTP/1.1\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s", headers, len(body), body)
	}
	cases := []struct {
		name, req string
		status    string
		runs      bool // the command table is reached
	}{
		{"text/plain form post", post("Host: " + addr + "\r\nContent-Type: text/plain\r\nOrigin: http://evil.example\r\n"), "403", false},
		{"text/plain without origin", post("Host: " + addr + "\r\nContent-Type: text/plain\r\n"), "415", false},
		{"urlencoded", post("Host: " + addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\n"), "415", false},
		{"multipart", post("Host: " + addr + "\r\nContent-Type: multipart/form-data; boundary=x\r\n"), "415", false},
		{"no content type", post("Host: " + addr + "\r\n"), "415", false},
		{"json from a foreign origin", post("Host: " + addr + "\r\nContent-Type: application/json\r\nOrigin: http://evil.example\r\n"), "403", false},
		{"json from origin null", post("Host: " + addr + "\r\nContent-Type: application/json\r\nOrigin: null\r\n"), "403", false},
		{"origin on another port", post("Host: " + addr + "\r\nContent-Type: application/json\r\nOrigin: http://127.0.0.1:1\r\n"), "403", false},
		{"rebinding post", post("Host: evil.example:" + port + "\r\nContent-Type: application/json\r\n"), "403", false},
		{"rebinding post same origin", post("Host: evil.example:" + port + "\r\nContent-Type: application/json\r\nOrigin: http://evil.example:" + port + "\r\n"), "403", false},
		{"rebinding read", "GET /v1/config HTTP/1.1\r\nHost: evil.example:" + port + "\r\nConnection: close\r\n\r\n", "403", false},
		{"rebinding to a lookalike", "GET /v1/health HTTP/1.1\r\nHost: localhost.evil.example\r\nConnection: close\r\n\r\n", "403", false},
		{"delete with text/plain", "DELETE /v1/paths/cam HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n", "415", false},
		{"json, own origin", post("Host: " + addr + "\r\nContent-Type: application/json; charset=utf-8\r\nOrigin: http://" + addr + "\r\n"), "201", true},
		{"json, localhost", post("Host: localhost:" + port + "\r\nContent-Type: application/json\r\n"), "201", true},
		{"read by loopback address", "GET /v1/health HTTP/1.1\r\nHost: [::1]:" + port + "\r\nConnection: close\r\n\r\n", "200", true},
		{"read by an allowed name", "GET /v1/health HTTP/1.1\r\nHost: box.example:" + port + "\r\nConnection: close\r\n\r\n", "200", true},
		{"delete without a body", "DELETE /v1/paths/cam HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n", "204", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line, got := raw(t, addr, "127.0.0.1", tc.req)
			if !strings.HasPrefix(line, "HTTP/1.1 "+tc.status+" ") {
				t.Fatalf("= %q, want %s\n%s", line, tc.status, got)
			}
			if calls := cmds.take(); (len(calls) > 0) != tc.runs {
				t.Fatalf("commands run: %v", calls)
			}
		})
	}
}

func TestWrongCredentialsGetAChallenge(t *testing.T) {
	s := runServer(t, api.Options{Commands: &countingCommands{}, Authorize: func(r *http.Request) *api.Refusal {
		if u, p, _ := r.BasicAuth(); u == "ops" && p == "pw" {
			return nil
		}
		return &api.Refusal{Status: http.StatusUnauthorized}
	}})
	for _, creds := range []string{"", "Authorization: Basic b3BzOm5vcGU=\r\n"} {
		_, got := raw(t, s.Addr(), "127.0.0.1", "GET /v1/health HTTP/1.1\r\nHost: "+s.Addr()+"\r\n"+creds+"Connection: close\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 401 ") || !strings.Contains(got, "Www-Authenticate: Basic realm=") {
			t.Fatalf("credentials %q: %q", creds, got)
		}
	}
}

func TestBadPathNamesOnTheAPI(t *testing.T) {
	cmds := &countingCommands{}
	s := runServer(t, api.Options{Commands: cmds})
	long := strings.Repeat("a", 2048)
	for _, name := range []string{"..%2F..%2Fetc%2Fpasswd", "nul%00byte", long, "a%20b", "x%2F%2Fy"} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			req := fmt.Sprintf("%s /v1/paths/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", method, name, s.Addr())
			line, got := raw(t, s.Addr(), "127.0.0.1", req)
			if !strings.HasPrefix(line, "HTTP/1.1 400 ") || !strings.Contains(got, "invalid path name") || len(got) > 1024 {
				t.Errorf("%s %.40s: %.200q", method, name, got)
			}
		}
	}
	// Unencoded dots never reach a handler: the router redirects to the
	// cleaned path, which is no API route.
	line, _ := raw(t, s.Addr(), "127.0.0.1", "POST /v1/paths/../../etc/passwd HTTP/1.1\r\nHost: "+s.Addr()+"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	if strings.HasPrefix(line, "HTTP/1.1 2") {
		t.Errorf("dot-dot path: %q", line)
	}
	if calls := cmds.take(); len(calls) != 0 {
		t.Fatalf("bad names reached the commands: %.300q", calls)
	}
}

func TestAPISlowlorisIsClosed(t *testing.T) {
	s := runServer(t, api.Options{Commands: &countingCommands{}, ReadHeaderTimeout: 300 * time.Millisecond,
		ReadTimeout: 600 * time.Millisecond, IdleTimeout: 600 * time.Millisecond})
	base := runtime.NumGoroutine()
	cases := map[string]string{
		"idle":            "",
		"half header":     "GET /v1/health HTTP/1.1\r\nHost: x\r\n",
		"half body":       "POST /v1/paths/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
		"idle keep-alive": "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			c := testcam.DialFrom(t, "127.0.0.1", s.Addr())
			_, _ = io.WriteString(c, send)
			testcam.ReadUntilClosed(t, c, 5*time.Second)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.ListenerStats().Open != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.ListenerStats(); st.Open != 0 {
		t.Fatalf("connections still open: %+v", st)
	}
	testcam.Goroutines(t, base, 2, 10*time.Second)
}

func TestAPICaps(t *testing.T) {
	s := runServer(t, api.Options{Commands: &countingCommands{}, MaxConns: 2, MaxConnsPerIP: 1})
	testcam.DialFrom(t, "127.0.0.1", s.Addr()) // held, idle
	deadline := time.Now().Add(5 * time.Second)
	for s.ListenerStats().Open != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	get := "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
	if line, _ := raw(t, s.Addr(), "127.0.0.1", get); !strings.HasPrefix(line, "HTTP/1.1 429 ") {
		t.Fatalf("over the per-address cap: %q", line)
	}
	if line, _ := raw(t, s.Addr(), "127.0.0.2", get); !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		t.Fatalf("another address: %q", line)
	}
	if st := s.ListenerStats(); st.RefusedMaxConnsPerIP != 1 || st.Name != "api" || st.State.String() != "up" {
		t.Fatalf("stats %+v", st)
	}
}
