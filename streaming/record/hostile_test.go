package record

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/streaming/auth"
)

// The tests below attack the playback listener as a hostile LAN client
// would, with raw requests, as the WHEP and API listeners' tests do.

// TestPlaybackSlowlorisIsClosed: idle, half-sent and trickled requests
// are closed by the server's timeouts, and what they held is let go.
func TestPlaybackSlowlorisIsClosed(t *testing.T) {
	h := newHarness(t, PathConfig{}, fast)
	p := runPlayback(t, h, func(o *PlaybackOptions) {
		o.ReadHeaderTimeout, o.ReadTimeout, o.IdleTimeout = 300*time.Millisecond, 600*time.Millisecond, 600*time.Millisecond
	})
	addr := p.Addr().String()
	base := runtime.NumGoroutine()

	cases := []struct {
		name string
		send func(c io.Writer)
	}{
		{"idle", func(io.Writer) {}},
		{"half header", func(c io.Writer) { _, _ = io.WriteString(c, "GET /list?path=cam HTTP/1.1\r\nHost: x\r\n") }},
		{"trickled header", func(c io.Writer) {
			_, _ = io.WriteString(c, "GET /list?path=cam HTTP/1.1\r\n")
			for i := 0; i < 50; i++ {
				if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond) // the attack's pace, not synchronisation
			}
		}},
		{"idle keep-alive", func(c io.Writer) { _, _ = io.WriteString(c, "GET /list?path=cam HTTP/1.1\r\nHost: x\r\n\r\n") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testcam.DialFrom(t, "127.0.0.1", addr)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); tc.send(c) }()
			testcam.ReadUntilClosed(t, c, 5*time.Second)
			wg.Wait()
		})
	}
	waitFor(t, "connections let go", func() bool { return p.ListenerStats().Open == 0 })
	testcam.Goroutines(t, base, 2, 10*time.Second)
}

// TestPlaybackCaps: connections over the per-address cap get 429 at once,
// over the total cap 503, while another address is still served; the
// refusals are counted.
func TestPlaybackCaps(t *testing.T) {
	h := newHarness(t, PathConfig{}, fast)
	p := runPlayback(t, h, func(o *PlaybackOptions) { o.MaxConns, o.MaxConnsPerIP = 4, 2 })
	addr := p.Addr().String()
	list := "GET /list?path=cam HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	ask := func(src string) string {
		c := testcam.DialFrom(t, src, addr)
		_, _ = io.WriteString(c, list)
		return testcam.ReadUntilClosed(t, c, 5*time.Second)
	}

	for i := 0; i < 2; i++ {
		testcam.DialFrom(t, "127.0.0.1", addr) // idle, held
	}
	waitFor(t, "two held", func() bool { return p.ListenerStats().Open == 2 })
	if got := ask("127.0.0.1"); !strings.HasPrefix(got, "HTTP/1.1 429 ") {
		t.Fatalf("over the per-address cap: %q", got)
	}
	// Another source is served meanwhile (nothing is recorded: 404).
	if got := ask("127.0.0.2"); !strings.HasPrefix(got, "HTTP/1.1 404 ") || !strings.Contains(got, ErrNoRecordings.Error()) {
		t.Fatalf("another address: %q", got)
	}
	waitFor(t, "the served connection let go", func() bool { return p.ListenerStats().Open == 2 })
	for i := 0; i < 2; i++ {
		testcam.DialFrom(t, "127.0.0.2", addr)
	}
	waitFor(t, "four held", func() bool { return p.ListenerStats().Open == 4 })
	if got := ask("127.0.0.3"); !strings.HasPrefix(got, "HTTP/1.1 503 ") {
		t.Fatalf("over the total cap: %q", got)
	}
	st := p.ListenerStats()
	if st.Name != "playback" || st.State != guard.StateUp || st.RefusedMaxConnsPerIP != 1 || st.RefusedMaxConns != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPlaybackBadPathNames: names outside the path-name rule get 400
// before any credentials are checked or any recording is looked up.
func TestPlaybackBadPathNames(t *testing.T) {
	h := newHarness(t, PathConfig{}, fast)
	a := &countingAuth{}
	base := startPlayback(t, h, func(o *PlaybackOptions) { o.Auth = a })
	long := strings.Repeat("a", 2048)
	for _, name := range []string{"../../etc/passwd", "nul%00byte", long, "a//b", "/abs", "sp%20ace"} {
		for _, route := range []string{"/list?path=", "/get?start=2026-01-01T00:00:00Z&duration=1&path="} {
			resp, body := get(t, base+route+name, nil)
			if resp.StatusCode != 400 || !strings.Contains(body, "invalid path name") || len(body) > 200 {
				t.Errorf("%s%.20q: %s %q", route, name, resp.Status, body)
			}
		}
	}
	if n := a.calls(); n != 0 {
		t.Fatalf("credentials checked %d times for bad names", n)
	}
}

// countingAuth lets everybody in and counts the checks.
type countingAuth struct {
	mu sync.Mutex
	n  int
}

func (a *countingAuth) CheckContext(_ context.Context, _ auth.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	return nil
}

func (a *countingAuth) calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// denials collects the authenticator's reports.
type denials struct {
	mu sync.Mutex
	ds []auth.Denial
}

func (d *denials) Denied(x auth.Denial) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ds = append(d.ds, x)
}

func (d *denials) all() []auth.Denial {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]auth.Denial(nil), d.ds...)
}

// TestPlaybackGuessingGets429: after a few wrong passwords an address gets
// 429 with Retry-After, even with the right password, while the same user
// from another loopback address gets in; the refusals make one report
// (reader.denied, proto playback) whose count is exact.
func TestPlaybackGuessingGets429(t *testing.T) {
	h := newHarness(t, PathConfig{}, fast)
	sink := &denials{}
	a, err := auth.New([]auth.User{{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionPlayback}}}},
		auth.Options{Denials: sink, ReportInterval: time.Hour,
			// A first back-off of a minute: however slowly a loaded machine
			// runs the guesses, the address stays throttled for the test.
			Throttle: guard.NewThrottle(guard.ThrottleOptions{Backoff: time.Minute, MaxBackoff: time.Hour})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	base := startPlayback(t, h, func(o *PlaybackOptions) { o.Auth = a })
	basic := func(pass string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+pass))}
	}

	const guesses = 50
	codes := map[int]int{}
	for i := 0; i < guesses; i++ {
		resp, body := get(t, base+"/list?path=cam", basic("guess"+strconv.Itoa(i)))
		codes[resp.StatusCode]++
		if resp.StatusCode == 429 {
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 || !strings.Contains(body, "too many failed logins") {
				t.Fatalf("guess %d: 429 with Retry-After %q, %q", i, resp.Header.Get("Retry-After"), body)
			}
		}
	}
	// 5 free failures, then nothing is checked any more.
	if codes[401] != 5 || codes[429] != guesses-5 {
		t.Fatalf("answers %v: want 5 × 401, then 429", codes)
	}
	for _, hdr := range []map[string]string{basic("s3cret"), {"Authorization": "Bearer ops:s3cret"}} {
		if resp, _ := get(t, base+"/get?path=cam&start=2026-01-01T00:00:00Z&duration=1", hdr); resp.StatusCode != 429 {
			t.Fatalf("right password from the throttled address: %s, want 429 (refused unchecked)", resp.Status)
		}
	}
	// The same user from 127.0.0.2 gets past authentication: nothing is
	// recorded, 404.
	c := testcam.DialFrom(t, "127.0.0.2", strings.TrimPrefix(base, "http://"))
	_, _ = io.WriteString(c, "GET /list?path=cam HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ops:s3cret\r\nConnection: close\r\n\r\n")
	if got := testcam.ReadUntilClosed(t, c, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 404 ") {
		t.Fatalf("right password from 127.0.0.2: %q", got)
	}

	a.Close() // reports what is still being counted
	total := 0
	for _, d := range sink.all() {
		if d.IP != netip.MustParseAddr("127.0.0.1") || d.Kind != "reader.denied" || d.Proto != "playback" || d.Path != "cam" {
			t.Fatalf("unexpected report %+v", d)
		}
		total += d.Count
	}
	if n := len(sink.all()); n > 2 || total != guesses+2 {
		t.Fatalf("%d reports counting %d refusals; want at most 2 counting %d", n, total, guesses+2)
	}
}
