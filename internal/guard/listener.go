package guard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/backoff"
)

// Reason is why a connection was refused.
type Reason int

// Reasons.
const (
	ReasonUnknown       Reason = iota
	ReasonMaxConns             // the listener's total cap was reached
	ReasonMaxConnsPerIP        // the source address's cap was reached
)

func (r Reason) String() string {
	switch r {
	case ReasonMaxConns:
		return "max_connections"
	case ReasonMaxConnsPerIP:
		return "max_connections_per_ip"
	}
	return "unknown"
}

// RTSPBusy is the refusal of an RTSP listener: a minimal 503 (RTSP has no
// 429; the CSeq is unknown since nothing was read).
func RTSPBusy(Reason) []byte {
	return []byte("RTSP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
}

// HTTPBusy is the refusal of an HTTP listener: 429 when the client's own
// address is over its cap, 503 when the listener is full.
func HTTPBusy(r Reason) []byte {
	if r == ReasonMaxConnsPerIP {
		return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 30\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections from you\n")
	}
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\n")
}

// State is a listener's state.
type State int

// States.
const (
	StateUnknown State = iota
	StateUp            // accepting
	StateDown          // accepting ended on an error that is not temporary
	StateClosed        // closed by its owner
)

func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// ListenerOptions configure a Listener. Zero values take the stated
// defaults.
type ListenerOptions struct {
	// Name labels the listener in logs, health and metrics: "rtsp",
	// "webrtc", "api".
	Name string
	// MaxConns bounds the connections open at once; 0 = no bound.
	MaxConns int
	// MaxConnsPerIP bounds the connections open at once from one source
	// address (IPv4-mapped IPv6 counts as IPv4); 0 = no bound.
	MaxConnsPerIP int
	// Busy returns what a connection over a cap is sent before it is
	// closed; nil closes it without a word.
	Busy func(Reason) []byte
	// LogInterval is the least time between two log lines about accept
	// errors, and between two about refusals; default 10 s. The lines in
	// between are counted, not written.
	LogInterval time.Duration
	// Log is the parent logger; the listener adds component=listener and
	// listener=Name.
	Log zerolog.Logger
}

// Stats are a listener's figures.
type Stats struct {
	Name  string
	Addr  string
	State State
	// Err is why the listener went down ("" unless State is StateDown).
	Err string
	// Open is the number of connections open now.
	Open int
	// AcceptErrors counts temporary accept errors (retried).
	AcceptErrors uint64
	// Refused counts connections refused by each cap.
	RefusedMaxConns, RefusedMaxConnsPerIP uint64
}

// Backoff of the accept loop after a temporary error, as net/http's Serve.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// Refusals: a refused connection is sent Busy, its write side is shut and
// what the client sent is read and dropped until it closes or refuseLinger
// passes. Closing with unread bytes would reset the connection, and the
// client would lose the answer. At most maxRefusing refusals run at once;
// beyond that, and while descriptors run short (an accept failed within
// the last refuseLinger), a refused connection is closed at once.
const (
	refuseLinger = time.Second
	maxRefusing  = 64
	refuseDrain  = 64 << 10
)

// Listener is a net.Listener that survives temporary accept errors and
// caps its connections. Its Accept returns *Conn.
type Listener struct {
	ln  net.Listener
	o   ListenerOptions
	log zerolog.Logger

	done      chan struct{}
	closeOnce sync.Once
	down      chan struct{} // closed when accepting ended on an error

	mu       sync.Mutex
	closed   bool
	state    State
	err      error
	open     int
	perIP    map[netip.Addr]int
	refusing map[net.Conn]struct{}
	wg       sync.WaitGroup // refusals

	acceptErrors, refusedMax, refusedPerIP atomic.Uint64
	lastAcceptErr                          atomic.Int64 // unix nanoseconds
	errLog, refuseLog                      every
}

// Listen listens on a TCP address and wraps the listener.
func Listen(network, address string, o ListenerOptions) (*Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return Wrap(ln, o), nil
}

// Wrap guards ln; closing the Listener closes ln.
func Wrap(ln net.Listener, o ListenerOptions) *Listener {
	if o.LogInterval <= 0 {
		o.LogInterval = 10 * time.Second
	}
	l := &Listener{
		ln:       ln,
		o:        o,
		log:      o.Log.With().Str("component", "listener").Str("listener", o.Name).Logger(),
		done:     make(chan struct{}),
		down:     make(chan struct{}),
		state:    StateUp,
		perIP:    map[netip.Addr]int{},
		refusing: map[net.Conn]struct{}{},
	}
	l.errLog.interval, l.refuseLog.interval = o.LogInterval, o.LogInterval
	return l
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept implements net.Listener. It waits out temporary errors with
// backoff and refuses connections over the caps itself; an error it
// returns ends the listener (StateDown), except after Close.
func (l *Listener) Accept() (net.Conn, error) {
	bo := backoff.Backoff{Min: acceptRetryMin, Max: acceptRetryMax}
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, fmt.Errorf("accept: %w", net.ErrClosed)
			default:
			}
			if !temporary(err) {
				l.mu.Lock()
				if l.state != StateDown {
					l.state, l.err = StateDown, err
					close(l.down)
				}
				l.mu.Unlock()
				l.log.Error().Err(err).Msg("listener ended")
				return nil, err
			}
			n := l.acceptErrors.Add(1)
			d := bo.Next()
			now := time.Now()
			l.lastAcceptErr.Store(now.UnixNano())
			if ok, skipped := l.errLog.tick(now); ok {
				l.log.Warn().Err(err).Dur("retryIn", d.Round(time.Millisecond)).Uint64("total", n).Uint64("notLogged", skipped).
					Msg("accept failed; retrying")
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return nil, fmt.Errorf("accept: %w", net.ErrClosed)
			}
			continue
		}
		bo.Reset()
		if gc := l.admit(c); gc != nil {
			return gc, nil
		}
	}
}

// admit counts c in or refuses it; nil: refused.
func (l *Listener) admit(c net.Conn) net.Conn {
	ip := sourceAddr(c)
	l.mu.Lock()
	reason := ReasonUnknown
	switch {
	case l.o.MaxConnsPerIP > 0 && l.perIP[ip] >= l.o.MaxConnsPerIP:
		reason = ReasonMaxConnsPerIP
	case l.o.MaxConns > 0 && l.open >= l.o.MaxConns:
		reason = ReasonMaxConns
	}
	if reason == ReasonUnknown {
		l.open++
		l.perIP[ip]++
		l.mu.Unlock()
		return &Conn{Conn: c, l: l, ip: ip}
	}
	linger := !l.closed && len(l.refusing) < maxRefusing &&
		time.Since(time.Unix(0, l.lastAcceptErr.Load())) > refuseLinger
	if linger {
		l.refusing[c] = struct{}{}
		l.wg.Add(1)
	}
	open := l.open
	l.mu.Unlock()

	var n uint64
	if reason == ReasonMaxConnsPerIP {
		n = l.refusedPerIP.Add(1)
	} else {
		n = l.refusedMax.Add(1)
	}
	if ok, skipped := l.refuseLog.tick(time.Now()); ok {
		l.log.Warn().Str("reason", reason.String()).Str("ip", ip.String()).Int("open", open).
			Uint64("total", n).Uint64("notLogged", skipped).Msg("connection refused")
	}
	if linger {
		go l.refuse(c, reason)
		return nil
	}
	// The answer fits an empty socket buffer; the client may lose it to
	// the reset that closing with unread bytes causes.
	if l.o.Busy != nil {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = c.Write(l.o.Busy(reason))
	}
	_ = c.Close()
	return nil
}

// refuse answers a refused connection and closes it (see refuseLinger).
func (l *Listener) refuse(c net.Conn, reason Reason) {
	defer l.wg.Done()
	_ = c.SetDeadline(time.Now().Add(refuseLinger))
	if l.o.Busy != nil {
		_, _ = c.Write(l.o.Busy(reason))
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, refuseDrain))
	_ = c.Close()
	l.mu.Lock()
	delete(l.refusing, c)
	l.mu.Unlock()
}

func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	l.open--
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

// Close implements net.Listener. Connections already accepted stay open
// (their servers close them); refusals under way end at once.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.mu.Lock()
		l.closed = true
		if l.state == StateUp {
			l.state = StateClosed
		}
		for c := range l.refusing {
			_ = c.SetDeadline(time.Now())
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Stats returns the listener's figures now.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{
		Name: l.o.Name, Addr: l.ln.Addr().String(), State: l.state, Open: l.open,
		AcceptErrors: l.acceptErrors.Load(), RefusedMaxConns: l.refusedMax.Load(), RefusedMaxConnsPerIP: l.refusedPerIP.Load(),
	}
	if l.err != nil {
		s.Err = l.err.Error()
	}
	return s
}

// Down is closed when accepting ended on an error that is not temporary
// (never by Close), for owners whose server would end quietly.
func (l *Listener) Down() <-chan struct{} { return l.down }

// Err returns the error that ended the listener, or nil while it is up or
// after Close.
func (l *Listener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != StateDown {
		return nil
	}
	return l.err
}

// Conn is an accepted connection; Close gives its place back.
type Conn struct {
	net.Conn
	l        *Listener
	ip       netip.Addr
	released atomic.Bool
}

// Close closes the connection and gives its place under the caps back.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	if c.released.CompareAndSwap(false, true) {
		c.l.release(c.ip)
	}
	return err
}

// SyscallConn gives the socket to writers that bypass the runtime poller
// (the RTSP server's inline writes).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite shuts the write side down, for net/http's graceful close.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// sourceAddr is c's remote IP; IPv4-mapped addresses count as IPv4. A
// connection without an IP address (pipes in tests) gets the zero Addr.
func sourceAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// temporary tells whether an accept error is worth retrying: the process
// or the system is out of descriptors or buffers, or one pending
// connection went away before it was accepted.
func temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	if temporaryOS(err) {
		return true
	}
	// What net/http's Serve retries on.
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// every lets one event through per interval and counts the others.
type every struct {
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
	skipped  uint64
}

// tick reports whether this event is to be logged, and how many were not
// since the last one that was.
func (e *every) tick(now time.Time) (bool, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.last.IsZero() && now.Sub(e.last) < e.interval {
		e.skipped++
		return false, 0
	}
	n := e.skipped
	e.last, e.skipped = now, 0
	return true, n
}
