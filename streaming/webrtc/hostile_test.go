package webrtc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// The tests below attack the HTTP listener as a hostile LAN client would,
// with raw requests.

// TestSlowlorisIsClosed: idle, half-sent and trickled requests are closed
// by the server's timeouts, and what they held is let go.
func TestSlowlorisIsClosed(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	srv := startServer(t, Options{Paths: m, ReadHeaderTimeout: 300 * time.Millisecond,
		ReadTimeout: 600 * time.Millisecond, IdleTimeout: 600 * time.Millisecond})
	addr := srv.Addr().String()
	base := runtime.NumGoroutine()

	cases := []struct {
		name string
		send func(c io.Writer)
	}{
		{"idle", func(io.Writer) {}},
		{"half header", func(c io.Writer) { _, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n") }},
		{"trickled header", func(c io.Writer) {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
			for i := 0; i < 50; i++ {
				if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond) // the attack's pace, not synchronisation
			}
		}},
		{"trickled body", func(c io.Writer) {
			_, _ = io.WriteString(c, "POST /cam/whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 10000\r\n\r\n")
			for i := 0; i < 50; i++ {
				if _, err := io.WriteString(c, "v=0\r\n"); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{"idle keep-alive", func(c io.Writer) { _, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testcam.DialFrom(t, "127.0.0.1", addr)
			go tc.send(c)
			testcam.ReadUntilClosed(t, c, 5*time.Second)
		})
	}
	waitFor(t, "connections let go", 5*time.Second, func() bool { return srv.ListenerStats()[0].Open == 0 })
	testcam.Goroutines(t, base, 2, 10*time.Second)
}

// TestHTTPCaps: connections over the per-address cap get 429 at once,
// over the total cap 503, while another address is still served.
func TestHTTPCaps(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	srv := startServer(t, Options{Paths: m, MaxConns: 4, MaxConnsPerIP: 2})
	addr := srv.Addr().String()
	get := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

	for i := 0; i < 2; i++ {
		testcam.DialFrom(t, "127.0.0.1", addr) // idle, held
	}
	waitFor(t, "two held", 5*time.Second, func() bool { return srv.ListenerStats()[0].Open == 2 })
	c := testcam.DialFrom(t, "127.0.0.1", addr)
	_, _ = io.WriteString(c, get)
	if got := testcam.ReadUntilClosed(t, c, 2*time.Second); !strings.HasPrefix(got, "HTTP/1.1 429 ") {
		t.Fatalf("over the per-address cap: %q", got)
	}
	// Another source is served meanwhile.
	c = testcam.DialFrom(t, "127.0.0.2", addr)
	_, _ = io.WriteString(c, get)
	if got := testcam.ReadUntilClosed(t, c, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("another address: %q", got)
	}
	waitFor(t, "the served connection let go", 5*time.Second, func() bool { return srv.ListenerStats()[0].Open == 2 })
	for i := 0; i < 2; i++ {
		testcam.DialFrom(t, "127.0.0.2", addr)
	}
	waitFor(t, "four held", 5*time.Second, func() bool { return srv.ListenerStats()[0].Open == 4 })
	c = testcam.DialFrom(t, "127.0.0.3", addr)
	_, _ = io.WriteString(c, get)
	if got := testcam.ReadUntilClosed(t, c, 2*time.Second); !strings.HasPrefix(got, "HTTP/1.1 503 ") {
		t.Fatalf("over the total cap: %q", got)
	}
	st := srv.ListenerStats()[0]
	if st.RefusedMaxConnsPerIP != 1 || st.RefusedMaxConns != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPendingSessionsCap: offers whose peers never connect fill the
// pending places; the next offer gets 503 at once; the places come back
// when the handshake timeout closes those sessions.
func TestPendingSessionsCap(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: m, MaxPendingSessions: 2, HandshakeTimeout: time.Second})
	api := loopbackAPI(t, false)
	offer := newClient(t, api).offer()
	base := runtime.NumGoroutine()
	for i := 0; i < 2; i++ {
		// Answers never applied: these peers never connect.
		if res, body := doRequest(t, http.MethodPost, srv.base+"/cam/whep", "application/sdp", offer); res.StatusCode != http.StatusCreated {
			t.Fatalf("offer %d: %d %s", i, res.StatusCode, body)
		}
	}
	start := time.Now()
	res, body := doRequest(t, http.MethodPost, srv.base+"/cam/whep", "application/sdp", offer)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "waiting to connect") {
		t.Fatalf("third offer: %d %q", res.StatusCode, body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal took %s", d)
	}
	if p, refused := srv.PendingStats(); p != 2 || refused != 1 {
		t.Fatalf("pending %d refused %d", p, refused)
	}
	waitFor(t, "unconnected sessions closed", 10*time.Second, func() bool {
		p, _ := srv.PendingStats()
		return srv.Sessions() == 0 && p == 0 && readers(m, "cam") == 0
	})
	testcam.Goroutines(t, base, 5, 10*time.Second)

	// A peer that connects gives its place back at once.
	c := newClient(t, api)
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("legit offer: %d %s", c.status, c.body)
	}
	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatal("legit reader got no IDR")
	}
	if p, _ := srv.PendingStats(); p != 0 {
		t.Fatalf("connected session still pending (%d)", p)
	}
}

// TestBadPathNamesRefused: names outside the path-name rule get 400 on
// every route, before any lookup or authorization.
func TestBadPathNamesRefused(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"all_others": {Source: streaming.SourcePublisher}})
	au, err := auth.New([]auth.User{{Name: "ops", Pass: "x", Permissions: []auth.Permission{{Action: auth.ActionRead}}}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Options{Paths: m, Lister: m, Auth: au})
	before := len(m.Paths())
	long := strings.Repeat("a", 2048)
	for _, target := range []string{
		"/../../etc/passwd/whep", "/..%2F..%2Fetc%2Fpasswd/whep", "/nul%00byte/whep", "/" + long + "/whep",
		"/../../etc/passwd", "/nul%00byte", "/" + long, "/a%20b/whep/0123", "/../x/whep/0123",
	} {
		method := "POST"
		if !strings.HasSuffix(target, "/whep") {
			method = "GET"
		}
		if strings.Contains(target, "/whep/") {
			method = "DELETE"
		}
		c := testcam.DialFrom(t, "127.0.0.1", srv.Addr().String())
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 3\r\nConnection: close\r\n\r\nv=0", method, target)
		got := testcam.ReadUntilClosed(t, c, 5*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, "invalid path name") {
			t.Errorf("%s %.60s: %.120q", method, target, got)
		}
		if len(got) > 1024 {
			t.Errorf("%s %.60s: %d bytes of answer echo the name", method, target, len(got))
		}
	}
	if n := len(m.Paths()); n != before {
		t.Fatalf("bad names created paths: %d, was %d", n, before)
	}
}

// TestIndexListsOnlyReadablePaths: GET / shows a client the paths it may
// read and nothing of the others.
func TestIndexListsOnlyReadablePaths(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"lobby":   {Source: streaming.SourcePublisher},
		"vault":   {Source: streaming.SourcePublisher},
		"~^cam.*": {Source: streaming.SourcePublisher},
	})
	publish(t, m, "vault", spsBaseline, false)
	cases := []struct {
		name       string
		users      []auth.User
		header     []string
		shows, not []string
	}{
		{"anonymous reads lobby", []auth.User{
			{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead, Path: "lobby"}}},
			{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		}, nil, []string{`href="/lobby"`}, []string{"vault", "H264", `class="ready"`}},
		{"credentials read all", []auth.User{
			{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead, Path: "lobby"}}},
			{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		}, []string{"Authorization", "Basic b3BzOnMzY3JldA=="}, []string{`href="/lobby"`, `href="/vault"`, `class="ready"`}, nil},
		{"wrong password reads what anonymous does", []auth.User{
			{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead, Path: "lobby"}}},
			{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		}, []string{"Authorization", "Basic b3BzOndyb25n"}, []string{`href="/lobby"`}, []string{"vault"}},
		{"anonymous reads none", []auth.User{
			{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		}, nil, []string{"No paths."}, []string{"lobby", "vault", "<table"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			au, err := auth.New(tc.users, auth.Options{})
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, Options{Paths: m, Lister: m, Auth: au})
			res, body := doRequest(t, http.MethodGet, srv.base+"/", "", "", tc.header...)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET / = %d", res.StatusCode)
			}
			for _, s := range tc.shows {
				if !strings.Contains(body, s) {
					t.Errorf("index lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(body, s) {
					t.Errorf("index shows %q:\n%s", s, body)
				}
			}
		})
	}
	// A client that may read nothing sees the page of a box without paths.
	au, _ := auth.New([]auth.User{{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}}}, auth.Options{})
	srv := startServer(t, Options{Paths: m, Lister: m, Auth: au})
	_, withPaths := doRequest(t, http.MethodGet, srv.base+"/", "", "")
	empty := newManager(t, nil)
	srv2 := startServer(t, Options{Paths: empty, Lister: empty, Auth: au})
	_, noPaths := doRequest(t, http.MethodGet, srv2.base+"/", "", "")
	if withPaths != noPaths {
		t.Fatalf("the index tells a client that may read nothing that paths exist:\n%s\n---\n%s", withPaths, noPaths)
	}
}

// slowPaths answers Acquire only after a delay, like an on-demand camera
// that is slow to start.
type slowPaths struct {
	*streaming.Manager
	delay time.Duration
}

func (p slowPaths) Acquire(ctx context.Context, name string, req streaming.ReaderRequest) (*streaming.Lease, error) {
	t := time.NewTimer(p.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Manager.Acquire(ctx, name, req)
}

// TestSlowOfferOutlivesReadTimeout: an offer that waits for its source
// longer than ReadTimeout is still answered (the timeout bounds reading
// the request, not answering it).
func TestSlowOfferOutlivesReadTimeout(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: slowPaths{Manager: m, delay: 800 * time.Millisecond},
		ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	c := newClient(t, loopbackAPI(t, false))
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("slow offer: %d %s", c.status, c.body)
	}
}
