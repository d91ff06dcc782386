// Package auth decides who may read, publish and use the API, from the
// configured users: a name (or "any"), a password (plain, sha256: or
// argon2: hash), the networks they may come from and their permissions.
// RTSP, WHEP and the HTTP API share it.
//
// It also makes guessing cost the guesser more than the box: argon2
// verifications run within a memory budget and wait in a bounded line
// with a deadline (slots.go); successful ones are remembered for a few
// minutes so a reader does not hash per request (cache.go); sources that
// fail too often are refused unchecked for a growing while
// (internal/guard's Throttle); refusals are reported aggregated per
// source and interval (report.go).
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/argon2"

	"github.com/camgate/camgate/internal/guard"
)

// Action is what a request wants to do.
type Action string

// Actions.
const (
	ActionRead    Action = "read"
	ActionPublish Action = "publish"
	ActionAPI     Action = "api"
	// ActionPlayback is reading recordings (the playback listener).
	ActionPlayback Action = "playback"
)

// Permission is an action, optionally limited to a path or "~regexp".
type Permission struct {
	Action Action
	Path   string
}

// User is one entry of auth.users.
type User struct {
	Name        string // "any" matches everybody without credentials
	Pass        string // plain, "sha256:BASE64" or "argon2:..." (PHC string)
	IPs         []string
	Permissions []Permission
}

// Throttle slows down failed logins per source address;
// *guard.Throttle satisfies it.
type Throttle interface {
	// Check returns wait > 0 when addr must be refused unchecked, and
	// the number of its recent failures.
	Check(addr netip.Addr) (wait time.Duration, failures int)
	Failed(addr netip.Addr) time.Duration
	Succeeded(addr netip.Addr)
}

// Options tune the cost controls. Zero values take the stated defaults.
type Options struct {
	// Argon2MaxMemory bounds the memory of the argon2 verifications
	// running at once, in bytes: each weighs its hash's m parameter, and
	// one always runs, whatever its weight. Default 64 MiB.
	Argon2MaxMemory int64
	// Argon2QueueTimeout is how long a verification may wait for room;
	// a request that cannot get it in time is refused with ErrBusy.
	// Default 5 s.
	Argon2QueueTimeout time.Duration
	// Argon2MaxWaiting bounds the verifications waiting for room; beyond
	// it requests are refused with ErrBusy at once. Default 64.
	Argon2MaxWaiting int
	// CacheTTL is how long a successful argon2 verification is
	// remembered (never refreshed); default 2 min. CacheSize bounds the
	// entries; default 1024 (about 100 KiB).
	CacheTTL  time.Duration
	CacheSize int
	// Throttle is consulted before credentials are checked; default a
	// guard.Throttle with its defaults (5 free failures, then 1 s
	// doubling up to 5 min, forgotten after 10 quiet minutes).
	Throttle Throttle
	// Denials receives refusals aggregated per source address and
	// action: the first at once, then one report per ReportInterval
	// (default 1 min) with a count while they go on. At most
	// ReportSources addresses (default 32) are reported one by one per
	// interval; the others are counted together. nil: only logged.
	Denials        DenialSink
	ReportInterval time.Duration
	ReportSources  int
	// ReturnMemory, when set, is called once argon2 verifications have
	// stopped for a second; the composition root decides what it does
	// (debug.FreeOSMemory: an argon2 buffer is tens of MiB, and the Go
	// runtime would keep it mapped for minutes). Default nil.
	ReturnMemory func()
	// Log receives one line per denial report; default none (the agent
	// leaves it so: its event sink logs each event it is handed).
	Log zerolog.Logger

	now func() time.Time // default time.Now; tests replace it
}

type user struct {
	name   string
	pass   string
	argon2 *argon2Hash // for "argon2:" passwords
	nets   []*net.IPNet
	perms  []perm
}

type perm struct {
	action Action
	path   string
	re     *regexp.Regexp
}

// Authenticator checks requests against the users.
type Authenticator struct {
	users    []user
	slots    *slots
	cache    *cache
	throttle Throttle
	report   *reporter
	closeMu  sync.Once
	stats    struct {
		argon2, cacheHits, throttled, busy, denied atomic.Uint64
	}
}

// New compiles the users; the Authenticator must be Closed when done.
func New(users []User, o Options) (*Authenticator, error) {
	if o.Argon2MaxMemory <= 0 {
		o.Argon2MaxMemory = 64 << 20
	}
	if o.Argon2QueueTimeout <= 0 {
		o.Argon2QueueTimeout = 5 * time.Second
	}
	if o.Argon2MaxWaiting <= 0 {
		o.Argon2MaxWaiting = 64
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 2 * time.Minute
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 1024
	}
	if o.Throttle == nil {
		o.Throttle = guard.NewThrottle(guard.ThrottleOptions{})
	}
	if o.ReportInterval <= 0 {
		o.ReportInterval = time.Minute
	}
	if o.ReportSources <= 0 {
		o.ReportSources = 32
	}
	if o.now == nil {
		o.now = time.Now
	}
	a := &Authenticator{
		throttle: o.Throttle,
		slots:    newSlots(o.Argon2MaxMemory, o.Argon2MaxWaiting, o.Argon2QueueTimeout, o.ReturnMemory, time.Second),
		cache:    newCache(o.CacheSize, o.CacheTTL, o.now),
		report:   newReporter(o.ReportInterval, o.ReportSources, o.Denials, o.Log.With().Str("component", "auth").Logger(), o.now),
	}
	for i, u := range users {
		if err := CheckPassword(u.Pass); err != nil {
			return nil, fmt.Errorf("auth user %d: pass: %w", i, err)
		}
		cu := user{name: u.Name, pass: u.Pass}
		if phc, ok := strings.CutPrefix(u.Pass, "argon2:"); ok {
			h, err := parseArgon2(phc)
			if err != nil {
				return nil, fmt.Errorf("auth user %d: pass: %w", i, err)
			}
			cu.argon2 = &h
		}
		for _, s := range u.IPs {
			if !strings.Contains(s, "/") {
				if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
					s += "/32"
				} else {
					s += "/128"
				}
			}
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				return nil, fmt.Errorf("auth user %d: ips: %w", i, err)
			}
			cu.nets = append(cu.nets, n)
		}
		for _, p := range u.Permissions {
			cp := perm{action: p.Action, path: p.Path}
			if strings.HasPrefix(p.Path, "~") {
				re, err := regexp.Compile(p.Path[1:])
				if err != nil {
					return nil, fmt.Errorf("auth user %d: permission path: %w", i, err)
				}
				cp.re = re
			}
			cu.perms = append(cu.perms, cp)
		}
		a.users = append(a.users, cu)
	}
	return a, nil
}

// Close reports the refusals still being counted and stops the timers.
// Checks after Close still work; their refusals are reported one by one
// and argon2 verifications are refused with ErrBusy.
func (a *Authenticator) Close() {
	a.closeMu.Do(func() {
		a.slots.close()
		a.report.close()
	})
}

// Request is one attempt to do something.
type Request struct {
	Action Action
	Path   string
	IP     net.IP
	// Proto names the protocol in denial reports: rtsp, whep, api.
	Proto string
	// User and Pass as sent (Basic auth, bearer token split as user:pass,
	// or the user name of a Digest header with Pass empty).
	User string
	Pass string
	// VerifyPlain, when set, checks the request's own proof (RTSP Digest)
	// against a user's plain password. Hashed passwords cannot be checked
	// this way; such users need Basic auth.
	VerifyPlain func(user, pass string) bool
}

// Check is CheckContext without a context of its own.
func (a *Authenticator) Check(r Request) error {
	return a.CheckContext(context.Background(), r)
}

// CheckContext returns nil when some user entry allows the request, else
// ErrCredentialsRequired (no credentials given), ErrDenied, or a
// *RetryError wrapping ErrThrottled (the source failed too often lately:
// nothing was checked) or ErrBusy (no argon2 slot in time). Waiting for a
// slot ends with ctx too.
//
// Anonymous ("any") entries are tried first and cost nothing, so a
// throttled source keeps what it may do without credentials.
func (a *Authenticator) CheckContext(ctx context.Context, r Request) error {
	for i := range a.users {
		u := &a.users[i]
		if u.name == "any" && u.allows(r.Action, r.Path) && u.fromAllowed(r.IP) {
			return nil
		}
	}
	ip := addrOf(r.IP)
	if r.User == "" {
		if !a.NeedsCredentials(r.Action, r.Path, r.IP) {
			// Nobody could: no challenge helps.
			a.stats.denied.Add(1)
			a.report.deny(&r, ip, outcomeDenied)
		}
		return ErrCredentialsRequired
	}
	wait, failures := a.throttle.Check(ip)
	if wait > 0 {
		a.stats.throttled.Add(1)
		a.report.deny(&r, ip, outcomeThrottled)
		return &RetryError{Err: ErrThrottled, RetryAfter: wait}
	}
	for i := range a.users {
		u := &a.users[i]
		if u.name == "any" || u.name != r.User || !u.allows(r.Action, r.Path) || !u.fromAllowed(r.IP) {
			continue
		}
		ok, err := a.passwordMatches(ctx, u, &r, ip, failures > 0)
		switch {
		case errors.Is(err, ErrThrottled):
			a.stats.throttled.Add(1)
			a.report.deny(&r, ip, outcomeThrottled)
			return err
		case err != nil:
			a.stats.busy.Add(1)
			a.report.deny(&r, ip, outcomeBusy)
			return &RetryError{Err: ErrBusy, RetryAfter: time.Second}
		}
		if ok {
			a.throttle.Succeeded(ip)
			return nil
		}
	}
	a.throttle.Failed(ip)
	a.stats.denied.Add(1)
	a.report.deny(&r, ip, outcomeDenied)
	return ErrDenied
}

// Permits is CheckContext for deciding what to show rather than what to
// grant (the console lists the paths a client may read, on every poll).
// A request no entry of its user would allow (a reader's credentials
// asked about a path it may not read, or about the API) is not a failed
// login: it is neither counted towards the address's throttle nor
// reported, and costs no password check. A wrong password for an entry
// that would allow it is a failed login, as for CheckContext, which
// gives the error then.
func (a *Authenticator) Permits(ctx context.Context, r Request) (bool, error) {
	for i := range a.users {
		u := &a.users[i]
		if u.name == "any" && u.allows(r.Action, r.Path) && u.fromAllowed(r.IP) {
			return true, nil
		}
	}
	if r.User == "" {
		return false, nil
	}
	for i := range a.users {
		u := &a.users[i]
		if u.name == r.User && u.name != "any" && u.allows(r.Action, r.Path) && u.fromAllowed(r.IP) {
			err := a.CheckContext(ctx, r)
			return err == nil, err
		}
	}
	return false, nil
}

// addrOf converts ip for the throttle and reports; nil is the zero Addr.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// NeedsCredentials reports whether some named user could allow action on
// path from ip, i.e. whether a 401 challenge is worth sending.
func (a *Authenticator) NeedsCredentials(action Action, path string, ip net.IP) bool {
	for _, u := range a.users {
		if u.name != "any" && u.allows(action, path) && u.fromAllowed(ip) {
			return true
		}
	}
	return false
}

// Stats are the Authenticator's counters since New.
type Stats struct {
	Argon2Verifications uint64 // argon2 hashes computed
	CacheHits           uint64 // argon2 verifications answered from the cache
	Throttled           uint64 // refused unchecked: the source's back-off
	Busy                uint64 // refused unchecked: no argon2 slot in time
	Denied              uint64 // refused after checking (or with nobody to ask for)
}

// Stats returns the counters.
func (a *Authenticator) Stats() Stats {
	return Stats{
		Argon2Verifications: a.stats.argon2.Load(),
		CacheHits:           a.stats.cacheHits.Load(),
		Throttled:           a.stats.throttled.Load(),
		Busy:                a.stats.busy.Load(),
		Denied:              a.stats.denied.Load(),
	}
}

func (u *user) allows(action Action, path string) bool {
	for _, p := range u.perms {
		if p.action != action {
			continue
		}
		switch {
		case p.path == "":
			return true
		case p.re != nil:
			if p.re.MatchString(path) {
				return true
			}
		case p.path == path:
			return true
		}
	}
	return false
}

func (u *user) fromAllowed(ip net.IP) bool {
	if len(u.nets) == 0 {
		return true
	}
	if ip == nil {
		return false
	}
	for _, n := range u.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// passwordMatches checks r's password against u's. Only argon2 can fail
// with an error: ErrBusy, or a *RetryError with ErrThrottled when ip was
// throttled while waiting for its slot (parallel guesses from one address
// all pass the first look at the throttle). suspect puts the verification
// behind those of sources without recent failures.
func (a *Authenticator) passwordMatches(ctx context.Context, u *user, r *Request, ip netip.Addr, suspect bool) (bool, error) {
	switch {
	case u.argon2 != nil:
		if r.Pass == "" {
			return false, nil
		}
		if a.cache.has(u.name, r.Pass, u.pass) {
			a.stats.cacheHits.Add(1)
			return true, nil
		}
		n, err := a.slots.acquire(ctx, u.argon2.memory(), suspect)
		if err != nil {
			return false, err
		}
		if wait, _ := a.throttle.Check(ip); wait > 0 {
			a.slots.release(n)
			return false, &RetryError{Err: ErrThrottled, RetryAfter: wait}
		}
		a.stats.argon2.Add(1)
		ok := u.argon2.matches(r.Pass)
		a.slots.release(n)
		if ok {
			a.cache.add(u.name, r.Pass, u.pass)
		}
		return ok, nil
	case strings.HasPrefix(u.pass, "sha256:"):
		if r.Pass == "" {
			return false, nil
		}
		sum := sha256.Sum256([]byte(r.Pass))
		want, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(u.pass, "sha256:"))
		return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1, nil
	default:
		if r.VerifyPlain != nil && r.Pass == "" {
			return r.VerifyPlain(u.name, u.pass), nil
		}
		return r.Pass != "" && subtle.ConstantTimeCompare([]byte(r.Pass), []byte(u.pass)) == 1, nil
	}
}

// memory is what one verification allocates, in bytes (m is in KiB).
func (h *argon2Hash) memory() int64 { return int64(h.m) << 10 }

func (h *argon2Hash) matches(pass string) bool {
	var got []byte
	if h.id {
		got = argon2.IDKey([]byte(pass), h.salt, h.t, h.m, h.p, uint32(len(h.hash)))
	} else {
		got = argon2.Key([]byte(pass), h.salt, h.t, h.m, h.p, uint32(len(h.hash)))
	}
	return subtle.ConstantTimeCompare(got, h.hash) == 1
}
