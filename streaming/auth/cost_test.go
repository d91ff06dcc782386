package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/camgate/camgate/internal/eventtype"
	"github.com/camgate/camgate/internal/guard"
)

// smallPHC is an argon2id hash of pass with m=1 MiB: fast enough to hash
// in every test.
func smallPHC(pass string) string {
	salt := []byte("0123456789abcdef")
	h := argon2.IDKey([]byte(pass), salt, 1, 1024, 1, 32)
	return fmt.Sprintf("argon2:$argon2id$v=19$m=1024,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(h))
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// denials collects reports.
type denials struct {
	mu  sync.Mutex
	all []Denial
}

func (d *denials) Denied(x Denial) {
	d.mu.Lock()
	d.all = append(d.all, x)
	d.mu.Unlock()
}

func (d *denials) list() []Denial {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Denial(nil), d.all...)
}

func newAuth(t *testing.T, o Options, users ...User) *Authenticator {
	t.Helper()
	a, err := New(users, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

var (
	lan      = net.ParseIP("192.0.2.10")
	attacker = net.ParseIP("192.0.2.66")
)

// TestCachedSuccessDoesNotRehash: a reader re-sending its credentials
// with every request costs one argon2 hash; a wrong password is never
// answered from the cache; after the TTL the password is hashed again.
func TestCachedSuccessDoesNotRehash(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	a := newAuth(t, Options{CacheTTL: time.Minute, now: clk.now},
		User{Name: "viewer", Pass: smallPHC("pw"), Permissions: []Permission{{Action: ActionRead}}})
	ok := Request{Action: ActionRead, Path: "cam", IP: lan, User: "viewer", Pass: "pw"}
	for i := 0; i < 20; i++ {
		if err := a.Check(ok); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if s := a.Stats(); s.Argon2Verifications != 1 || s.CacheHits != 19 {
		t.Fatalf("20 requests: %d hashes, %d cache hits; want 1 and 19", s.Argon2Verifications, s.CacheHits)
	}
	bad := ok
	bad.Pass = "pW"
	if err := a.Check(bad); !errors.Is(err, ErrDenied) {
		t.Fatalf("wrong password after a cached success: %v", err)
	}
	if s := a.Stats(); s.Argon2Verifications != 2 {
		t.Fatalf("wrong password not hashed (%d hashes)", s.Argon2Verifications)
	}
	clk.add(time.Minute)
	if err := a.Check(ok); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Argon2Verifications != 3 {
		t.Fatalf("expired entry answered: %d hashes, want 3", s.Argon2Verifications)
	}
}

// TestCacheHoldsNoSecret: entries are keyed MACs that change with the
// stored hash and with the Authenticator; the password appears nowhere;
// the number of entries is bounded.
func TestCacheHoldsNoSecret(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c := newCache(8, time.Minute, clk.now)
	c.add("viewer", "hunter2", "argon2:A")
	if !c.has("viewer", "hunter2", "argon2:A") {
		t.Fatal("added entry not found")
	}
	if c.has("viewer", "hunter2", "argon2:B") {
		t.Fatal("entry still matches after the stored hash changed")
	}
	if c.has("viewer", "hunter", "2argon2:A") || c.has("viewe", "rhunter2", "argon2:A") {
		t.Fatal("fields are not delimited")
	}
	if newCache(8, time.Minute, clk.now).has("viewer", "hunter2", "argon2:A") {
		t.Fatal("another Authenticator's cache matches: the key is not random")
	}
	for k := range c.m {
		if strings.Contains(string(k[:]), "hunter2") {
			t.Fatal("the password is in a key")
		}
	}
	if strings.Contains(string(c.buf), "hunter2") {
		t.Fatal("the password stays in the scratch buffer")
	}
	for i := 0; i < 100; i++ {
		c.add("u", fmt.Sprint(i), "argon2:A")
		if c.len() > 8 {
			t.Fatalf("%d entries for a cache of 8", c.len())
		}
	}
	if !c.has("u", "99", "argon2:A") || c.has("u", "91", "argon2:A") {
		t.Fatal("not the oldest entries were dropped")
	}
	if c.has("viewer", strings.Repeat("x", maxCached), "argon2:A") {
		t.Fatal("oversized credentials matched")
	}
}

// TestSlotsWeightAndDeadline: verifications heavier than the budget still
// run one at a time; a request that cannot get room in time is refused
// with ErrBusy, as is one beyond the line's bound; sources with failures
// wait behind clean ones.
func TestSlotsWeightAndDeadline(t *testing.T) {
	s := newSlots(100, 2, 50*time.Millisecond, nil, 0)
	n, err := s.acquire(context.Background(), 1000, false)
	if err != nil || n != 100 {
		t.Fatalf("heavier than the budget: %d, %v; want it capped at 100 and run", n, err)
	}
	if _, err := s.acquire(context.Background(), 10, false); !errors.Is(err, ErrBusy) {
		t.Fatalf("no room within the deadline: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.acquire(ctx, 10, false); !errors.Is(err, ErrBusy) {
		t.Fatalf("cancelled context: %v, want ErrBusy", err)
	}

	s = newSlots(100, 2, time.Minute, nil, 0)
	held, _ := s.acquire(context.Background(), 100, false)
	order := make(chan string, 2)
	var wg sync.WaitGroup
	start := func(name string, suspect bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.acquire(context.Background(), 100, suspect)
			if err != nil {
				order <- name + ": " + err.Error()
				return
			}
			order <- name
			s.release(n)
		}()
	}
	start("attacker", true)
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.waiting[1].Len() == 1 })
	start("legit", false)
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.waiting[0].Len() == 1 })
	if _, err := s.acquire(context.Background(), 1, false); !errors.Is(err, ErrBusy) {
		t.Fatalf("third waiter with a line of 2: %v, want ErrBusy at once", err)
	}
	s.release(held)
	wg.Wait()
	if first, second := <-order, <-order; first != "legit" || second != "attacker" {
		t.Fatalf("served %q then %q; want the clean source first", first, second)
	}
	if s.used != 0 {
		t.Fatalf("%d still used", s.used)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestThrottledSourceIsRefusedUnchecked: after a few failures a source's
// attempts are refused with ErrThrottled without hashing, even with the
// right password; anonymous access stays; another source is unaffected;
// a success after the back-off resets the source.
func TestThrottledSourceIsRefusedUnchecked(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	th := guard.NewThrottle(guard.ThrottleOptions{Failures: 3, Backoff: time.Second, Now: clk.now})
	a := newAuth(t, Options{Throttle: th, now: clk.now},
		User{Name: "any", Permissions: []Permission{{Action: ActionRead, Path: "lobby"}}},
		User{Name: "ops", Pass: smallPHC("pw"), Permissions: []Permission{{Action: ActionRead}, {Action: ActionPublish}}})
	req := func(ip net.IP, pass string) Request {
		return Request{Action: ActionRead, Path: "cam", IP: ip, User: "ops", Pass: pass}
	}
	for i := 0; i < 3; i++ {
		if err := a.Check(req(attacker, "guess")); !errors.Is(err, ErrDenied) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	hashed := a.Stats().Argon2Verifications
	err := a.Check(req(attacker, "pw"))
	if !errors.Is(err, ErrThrottled) || RetryAfterSeconds(err) != 1 {
		t.Fatalf("right password from a throttled source: %v (retry %d s), want ErrThrottled for 1 s", err, RetryAfterSeconds(err))
	}
	if got := a.Stats().Argon2Verifications; got != hashed {
		t.Fatalf("throttled attempt was hashed (%d -> %d)", hashed, got)
	}
	if err := a.Check(Request{Action: ActionRead, Path: "lobby", IP: attacker, User: "ops", Pass: "guess"}); err != nil {
		t.Fatalf("anonymous path from a throttled source: %v", err)
	}
	if err := a.Check(req(lan, "pw")); err != nil {
		t.Fatalf("another source: %v", err)
	}
	clk.add(time.Second)
	if err := a.Check(req(attacker, "pw")); err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
	if w, n := th.Check(addrOf(attacker)); w != 0 || n != 0 {
		t.Fatalf("success did not reset the source: %s, %d failures", w, n)
	}
}

// TestParallelGuessesFromOneAddress: 20 guesses sent at once from one
// address all pass the first look at the throttle; once the address is
// throttled, those still waiting for the argon2 slot are refused without
// hashing.
func TestParallelGuessesFromOneAddress(t *testing.T) {
	a := newAuth(t, Options{Argon2MaxMemory: 1, Argon2QueueTimeout: time.Minute},
		User{Name: "ops", Pass: smallPHC("pw"), Permissions: []Permission{{Action: ActionRead}}})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- a.Check(Request{Action: ActionRead, IP: attacker, User: "ops", Pass: fmt.Sprint("guess", i)})
		}()
	}
	wg.Wait()
	close(errs)
	throttled := 0
	for err := range errs {
		if errors.Is(err, ErrThrottled) {
			throttled++
		}
	}
	// 5 free failures; a guess that got the slot just before the fifth
	// failure was recorded may still hash.
	if s := a.Stats(); s.Argon2Verifications > 7 || throttled < 13 {
		t.Fatalf("%d of 20 parallel guesses hashed, %d throttled; want at most 7 hashed", s.Argon2Verifications, throttled)
	}
}

// TestDenialsAggregated: 2 000 refusals from one source make two reports
// (the first at once, the rest at the interval's end) whose counts add up
// to 2 000 exactly; publish refusals are publisher.denied; sources beyond
// ReportSources are counted together.
func TestDenialsAggregated(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	sink := &denials{}
	a := newAuth(t, Options{Denials: sink, ReportInterval: time.Minute, ReportSources: 4, now: clk.now,
		Throttle: guard.NewThrottle(guard.ThrottleOptions{Failures: 10, Now: clk.now})},
		User{Name: "ops", Pass: "pw", Permissions: []Permission{{Action: ActionRead}, {Action: ActionPublish}}})
	for i := 0; i < 2000; i++ {
		_ = a.Check(Request{Action: ActionRead, Path: "cam", IP: attacker, Proto: "rtsp", User: "ops", Pass: "guess"})
	}
	if got := sink.list(); len(got) != 1 || got[0].Count != 1 || got[0].Kind != eventtype.ReaderDenied {
		t.Fatalf("before the interval ends: %+v; want one report of 1", got)
	}
	clk.add(time.Minute)
	a.report.tick()
	got := sink.list()
	if len(got) != 2 {
		t.Fatalf("%d reports, want 2: %+v", len(got), got)
	}
	if d := got[1]; d.Count != 1999 || d.Throttled != 1990 || d.IP.String() != "192.0.2.66" || d.Proto != "rtsp" || d.User != "ops" {
		t.Fatalf("second report: %+v; want 1999 of which 1990 throttled", d)
	}
	clk.add(time.Minute)
	a.report.tick() // a quiet interval: nothing to say, the source is forgotten
	if n := len(sink.list()); n != 2 {
		t.Fatalf("quiet interval reported (%d reports)", n)
	}

	_ = a.Check(Request{Action: ActionPublish, Path: "door", IP: lan, Proto: "rtsp", User: "eve", Pass: "x"})
	if got := sink.list(); got[len(got)-1].Kind != eventtype.PublisherDenied {
		t.Fatalf("publish refusal reported as %q", got[len(got)-1].Kind)
	}

	for i := 0; i < 20; i++ {
		_ = a.Check(Request{Action: ActionRead, Path: "cam", IP: net.IPv4(10, 0, 0, byte(i+1)), User: "x", Pass: "y"})
	}
	a.Close()
	total, others := 0, 0
	for _, d := range sink.list()[3:] {
		total += d.Count
		if !d.IP.IsValid() {
			others += d.Count
		}
	}
	// 4 sources tracked: the publish one and 3 of these; 17 counted together.
	if total != 20 || others != 17 {
		t.Fatalf("20 sources: %d refusals reported, %d as others; want 20 and 17", total, others)
	}
}

// TestDenialReportTimer: with the real clock, the counted refusals go out
// when the interval ends, without any further request or Close.
func TestDenialReportTimer(t *testing.T) {
	sink := &denials{}
	a := newAuth(t, Options{Denials: sink, ReportInterval: 20 * time.Millisecond},
		User{Name: "ops", Pass: "pw", Permissions: []Permission{{Action: ActionAPI}}})
	for i := 0; i < 4; i++ {
		_ = a.Check(Request{Action: ActionAPI, IP: attacker, Proto: "api", User: "ops", Pass: "guess"})
	}
	waitUntil(t, func() bool { return len(sink.list()) == 2 })
	if got := sink.list(); got[0].Count != 1 || got[1].Count != 3 || got[1].Kind != eventtype.APIDenied {
		t.Fatalf("reports %+v; want 1 then 3 api.denied", got)
	}
}

// TestBadArgon2Refused: a malformed argon2 hash fails New instead of
// never matching.
func TestBadArgon2Refused(t *testing.T) {
	for _, p := range []string{
		"argon2:$argon2id$v=19$m=65536,t=1,p=4$c2FsdA",
		"argon2:$argon2id$v=19$m=65536,t=0,p=4$c2FsdA$aGFzaA",
		"argon2:$argon2id$v=19$m=8,t=1,p=4$c2FsdA$aGFzaA",
		"argon2:$argon2d$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		"argon2:$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$!!",
	} {
		if _, err := New([]User{{Name: "ops", Pass: p}}, Options{}); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
}

func BenchmarkCheckCachedArgon2(b *testing.B) {
	a, err := New([]User{{Name: "viewer", Pass: opsPHC, Permissions: []Permission{{Action: ActionRead}}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	r := Request{Action: ActionRead, Path: "cam", IP: lan, User: "viewer", Pass: opsPass}
	if err := a.Check(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Check(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckArgon2Uncached(b *testing.B) {
	a, err := New([]User{{Name: "viewer", Pass: opsPHC, Permissions: []Permission{{Action: ActionRead}}}}, Options{CacheTTL: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	r := Request{Action: ActionRead, Path: "cam", IP: lan, User: "viewer", Pass: opsPass}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Check(r); err != nil {
			b.Fatal(err)
		}
	}
}
