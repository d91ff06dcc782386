package guard

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestThrottle(o ThrottleOptions) (*Throttle, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o.Now = c.now
	return NewThrottle(o), c
}

var attacker = netip.MustParseAddr("192.0.2.66")

// TestThrottleBackoffGrows: after Failures failures the source waits 1 s,
// then each failure after a wait doubles it up to MaxBackoff; while it
// waits it is refused, after the wait it may try again.
func TestThrottleBackoffGrows(t *testing.T) {
	th, clk := newTestThrottle(ThrottleOptions{Failures: 3, Backoff: time.Second, MaxBackoff: 10 * time.Second})
	for i := 1; i < 3; i++ {
		if d := th.Failed(attacker); d != 0 {
			t.Fatalf("failure %d: refused for %s, want free failures", i, d)
		}
		if w, n := th.Check(attacker); w != 0 || n != i {
			t.Fatalf("after failure %d: Check = %s, %d", i, w, n)
		}
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		w *= time.Second
		if d := th.Failed(attacker); d != w {
			t.Fatalf("back-off %d: %s, want %s", i, d, w)
		}
		if wait, _ := th.Check(attacker); wait != w {
			t.Fatalf("back-off %d: Check wait %s, want %s", i, wait, w)
		}
		clk.add(w - time.Millisecond)
		if wait, _ := th.Check(attacker); wait != time.Millisecond {
			t.Fatalf("back-off %d: 1 ms before its end, wait = %s", i, wait)
		}
		clk.add(time.Millisecond)
		if wait, _ := th.Check(attacker); wait != 0 {
			t.Fatalf("back-off %d: still refused after it ended (%s)", i, wait)
		}
	}
}

// TestThrottleResets: a success clears the record at once; a quiet period
// without failures clears it too; other sources are never affected.
func TestThrottleResets(t *testing.T) {
	th, clk := newTestThrottle(ThrottleOptions{Failures: 2, Backoff: time.Second, MaxBackoff: time.Minute, Quiet: 5 * time.Minute})
	legit := netip.MustParseAddr("192.0.2.10")
	for i := 0; i < 4; i++ {
		th.Failed(attacker)
	}
	if w, _ := th.Check(attacker); w == 0 {
		t.Fatal("attacker not refused after 4 failures")
	}
	if w, n := th.Check(legit); w != 0 || n != 0 {
		t.Fatalf("another source is throttled: %s, %d failures", w, n)
	}

	th.Succeeded(attacker)
	if w, n := th.Check(attacker); w != 0 || n != 0 {
		t.Fatalf("after a success: wait %s, %d failures", w, n)
	}
	if d := th.Failed(attacker); d != 0 {
		t.Fatalf("first failure after a success refused for %s", d)
	}

	th.Failed(attacker)
	th.Failed(attacker) // 3 failures: 2 s
	clk.add(5 * time.Minute)
	if w, n := th.Check(attacker); w != 0 || n != 0 {
		t.Fatalf("after a quiet period: wait %s, %d failures", w, n)
	}
	if th.Len() != 0 {
		t.Fatalf("quiet source still in the table (%d)", th.Len())
	}
	if d := th.Failed(attacker); d != 0 {
		t.Fatalf("first failure after a quiet period refused for %s", d)
	}
}

// TestThrottleTableBounded: an attacker with 100 000 addresses cannot grow
// the table past MaxSources; the oldest records go first; checking
// addresses adds nothing.
func TestThrottleTableBounded(t *testing.T) {
	th, clk := newTestThrottle(ThrottleOptions{Failures: 1, MaxSources: 64})
	first := netip.MustParseAddr("10.0.0.1")
	th.Failed(first)
	clk.add(time.Millisecond)
	a := netip.MustParseAddr("10.1.0.0")
	for i := 0; i < 100_000; i++ {
		a = a.Next()
		th.Failed(a)
		th.Check(a.Next().Next()) // never failed: no entry
		if n := th.Len(); n > 64 {
			t.Fatalf("table has %d entries after %d addresses", n, i+1)
		}
	}
	if th.Len() != 64 {
		t.Fatalf("table has %d entries, want 64", th.Len())
	}
	if w, _ := th.Check(first); w != 0 {
		t.Fatal("the oldest source was not the one forgotten")
	}
	if w, _ := th.Check(a); w == 0 {
		t.Fatal("the newest source was forgotten")
	}
}

// TestThrottleMappedAddress: ::ffff:192.0.2.66 is 192.0.2.66.
func TestThrottleMappedAddress(t *testing.T) {
	th, _ := newTestThrottle(ThrottleOptions{Failures: 1})
	th.Failed(netip.MustParseAddr("::ffff:192.0.2.66"))
	if w, _ := th.Check(attacker); w == 0 {
		t.Fatal("mapped and plain IPv4 address counted apart")
	}
}

func BenchmarkThrottleCheck(b *testing.B) {
	th := NewThrottle(ThrottleOptions{})
	th.Failed(attacker)
	b.ReportAllocs()
	for b.Loop() {
		th.Check(attacker)
	}
}
