package guard

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// ThrottleOptions configure a Throttle. Zero values take the stated defaults.
type ThrottleOptions struct {
	// Failures is how many failed logins a source may have before it is
	// made to wait; default 5.
	Failures int
	// Backoff is the first wait, after the Failures-th failure; each
	// further failure doubles it, up to MaxBackoff. Defaults 1 s and 5 min.
	Backoff, MaxBackoff time.Duration
	// Quiet is how long after its last failure a source is forgotten
	// (its count starts again from zero); default 10 min, never less
	// than MaxBackoff.
	Quiet time.Duration
	// MaxSources bounds the table; when it is full the source whose last
	// failure is oldest is forgotten to make room. Default 4096 (about
	// 0.5 MiB at most).
	MaxSources int
	// Now is the clock; default time.Now. Tests replace it.
	Now func() time.Time
}

// Throttle slows down password guessing per source address: after a few
// failed logins from one address, its further attempts are refused without
// being checked for a back-off period that doubles with every further
// failure. A success from the address, or a quiet period without failures,
// resets it.
//
// Only failures create entries, so clients that log in correctly, or not
// at all, cost nothing; the table is bounded by MaxSources whatever the
// number of addresses an attacker uses.
//
// A success resets the address: an attacker who holds one valid
// credential can interleave Failures-1 guesses per success. The argon2
// cost and the bound on concurrent verifications still apply to those.
type Throttle struct {
	o ThrottleOptions

	mu      sync.Mutex
	sources map[netip.Addr]*list.Element // of *source
	lru     list.List                    // front: most recent failure
}

type source struct {
	addr     netip.Addr
	failures int
	last     time.Time // of the last failure
	until    time.Time // refused until then
}

// NewThrottle returns an empty Throttle.
func NewThrottle(o ThrottleOptions) *Throttle {
	if o.Failures <= 0 {
		o.Failures = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	if o.Quiet <= 0 {
		o.Quiet = 10 * time.Minute
	}
	if o.Quiet < o.MaxBackoff {
		o.Quiet = o.MaxBackoff
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 4096
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Throttle{o: o, sources: map[netip.Addr]*list.Element{}}
}

// key is the table key of an address: IPv4-mapped IPv6 addresses count as
// their IPv4 address, zones are ignored.
func key(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Check says whether a login from addr may be checked now. wait > 0
// means no: refuse it without checking and tell the client to retry after
// wait. failures is the number of recent failures from addr (0 for a
// source with a clean record), for callers that serve clean sources first.
func (t *Throttle) Check(addr netip.Addr) (wait time.Duration, failures int) {
	now := t.o.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.sources[key(addr)]
	if !ok {
		return 0, 0
	}
	s := e.Value.(*source)
	if now.Sub(s.last) >= t.o.Quiet {
		t.remove(e)
		return 0, 0
	}
	if now.Before(s.until) {
		return s.until.Sub(now), s.failures
	}
	return 0, s.failures
}

// Failed records a failed login from addr and returns how long addr is
// now refused (0 while it has fewer than Failures failures).
func (t *Throttle) Failed(addr netip.Addr) time.Duration {
	now := t.o.Now()
	k := key(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	var s *source
	if e, ok := t.sources[k]; ok {
		s = e.Value.(*source)
		if now.Sub(s.last) >= t.o.Quiet {
			*s = source{addr: k}
		}
		t.lru.MoveToFront(e)
	} else {
		for len(t.sources) >= t.o.MaxSources {
			t.remove(t.lru.Back())
		}
		s = &source{addr: k}
		t.sources[k] = t.lru.PushFront(s)
	}
	s.failures++
	s.last = now
	if s.failures < t.o.Failures {
		return 0
	}
	d := t.o.MaxBackoff
	if n := s.failures - t.o.Failures; n < 32 {
		if b := t.o.Backoff << n; b > 0 && b < d {
			d = b
		}
	}
	s.until = now.Add(d)
	return d
}

// Succeeded records a successful login from addr: its record is cleared.
func (t *Throttle) Succeeded(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.sources[key(addr)]; ok {
		t.remove(e)
	}
}

// Len is the number of addresses with a record.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sources)
}

func (t *Throttle) remove(e *list.Element) {
	delete(t.sources, e.Value.(*source).addr)
	t.lru.Remove(e)
}
