package guard

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/internal/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dialFrom connects to addr from the loopback address src (127.0.0.x:
// still loopback, another source as far as the caps are concerned).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s (needs the whole of 127.0.0.0/8 on lo): %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// acceptAll accepts until the listener ends, handing every connection
// over; the test closes them.
func acceptAll(t *testing.T, l *Listener) (<-chan net.Conn, <-chan error) {
	conns := make(chan net.Conn, 64)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				errc <- err
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		for len(conns) > 0 {
			(<-conns).Close()
		}
	})
	return conns, errc
}

func accepted(t *testing.T, conns <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("connection not accepted")
		return nil
	}
}

// refusedWith asserts that c gets want and then EOF, promptly, even
// though it sent a request first (unread bytes must not reset the
// connection before the answer is read).
func refusedWith(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), want) {
		t.Fatalf("refused connection got %q, %v; want %q then EOF", b, err, want)
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCapsRefuseAtOnceAndServeOthers(t *testing.T) {
	l, err := Listen("tcp", "127.0.0.1:0", ListenerOptions{Name: "t", MaxConns: 3, MaxConnsPerIP: 2, Busy: HTTPBusy})
	if err != nil {
		t.Fatal(err)
	}
	conns, _ := acceptAll(t, l)
	addr := l.Addr().String()

	// Two from 127.0.0.1 fill its share; the third is refused with 429.
	dialFrom(t, "127.0.0.1", addr)
	a1 := accepted(t, conns)
	dialFrom(t, "127.0.0.1", addr)
	accepted(t, conns)
	refusedWith(t, dialFrom(t, "127.0.0.1", addr), "HTTP/1.1 429 ")

	// Another source is still served, up to the total cap; then 503.
	b := dialFrom(t, "127.0.0.2", addr)
	bs := accepted(t, conns)
	if _, err := io.WriteString(b, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(bs, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("served connection: %q %v", buf, err)
	}
	refusedWith(t, dialFrom(t, "127.0.0.3", addr), "HTTP/1.1 503 ")

	st := l.Stats()
	if st.Open != 3 || st.RefusedMaxConnsPerIP != 1 || st.RefusedMaxConns != 1 || st.State != StateUp {
		t.Fatalf("stats %+v", st)
	}
	// A closed connection gives its place back.
	a1.Close()
	poll(t, "place given back", func() bool { return l.Stats().Open == 2 })
	dialFrom(t, "127.0.0.3", addr)
	accepted(t, conns)
	a1.Close() // twice: counted once
	if st := l.Stats(); st.Open != 3 {
		t.Fatalf("open %d after a double close", st.Open)
	}
}

func TestRTSPBusyIsAResponse(t *testing.T) {
	b := RTSPBusy(ReasonMaxConnsPerIP)
	if !strings.HasPrefix(string(b), "RTSP/1.0 503 Service Unavailable\r\n") || !strings.HasSuffix(string(b), "\r\n\r\n") {
		t.Fatalf("%q", b)
	}
}

// flaky fails its first accepts with err, then accepts for real.
type flaky struct {
	net.Listener
	fails atomic.Int64
	err   error
}

func (f *flaky) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, f.err
	}
	return f.Listener.Accept()
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// lines counts log lines containing a message.
type lines struct{ testlog.Buffer }

func (w *lines) count(msg string) int { return strings.Count(w.String(), msg) }

func TestTemporaryAcceptErrorsAreRetried(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f := &flaky{Listener: inner, err: acceptErr(errno)}
			f.fails.Store(6)
			logs := &lines{}
			l := Wrap(f, ListenerOptions{Name: "t", LogInterval: time.Hour, Log: zerolog.New(logs)})
			conns, errc := acceptAll(t, l)
			dialFrom(t, "127.0.0.1", l.Addr().String())
			select {
			case <-conns:
			case err := <-errc:
				t.Fatalf("listener ended: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("nothing accepted after the errors")
			}
			st := l.Stats()
			if st.AcceptErrors != 6 || st.State != StateUp {
				t.Fatalf("stats %+v", st)
			}
			if n := logs.count("accept failed"); n != 1 {
				t.Fatalf("%d log lines for 6 errors in one interval:\n%s", n, logs.String())
			}
		})
	}
}

func TestOtherAcceptErrorEndsTheListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: inner, err: acceptErr(syscall.EINVAL)}
	f.fails.Store(1)
	l := Wrap(f, ListenerOptions{Name: "t"})
	defer l.Close()
	if _, err := l.Accept(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Accept = %v", err)
	}
	select {
	case <-l.Down():
	default:
		t.Fatal("Down not closed")
	}
	st := l.Stats()
	if st.State != StateDown || !strings.Contains(st.Err, "invalid argument") || l.Err() == nil {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseEndsTheBackoff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: inner, err: acceptErr(syscall.EMFILE)}
	f.fails.Store(1 << 40)
	l := Wrap(f, ListenerOptions{Name: "t"})
	_, errc := acceptAll(t, l)
	poll(t, "retries", func() bool { return l.Stats().AcceptErrors >= 8 }) // the backoff reached about 1 s
	start := time.Now()
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Accept returned %s after Close", d)
	}
	if st := l.Stats(); st.State != StateClosed || l.Err() != nil {
		t.Fatalf("stats after Close %+v", st)
	}
	select {
	case <-l.Down():
		t.Fatal("Down closed by Close")
	default:
	}
}

// A client that never reads its refusal does not hold the refusal
// goroutine beyond refuseLinger, and Close ends refusals at once.
func TestRefusalsAreBounded(t *testing.T) {
	l, err := Listen("tcp", "127.0.0.1:0", ListenerOptions{Name: "t", MaxConnsPerIP: 1, Busy: RTSPBusy})
	if err != nil {
		t.Fatal(err)
	}
	conns, _ := acceptAll(t, l)
	dialFrom(t, "127.0.0.1", l.Addr().String())
	accepted(t, conns)
	for i := 0; i < 2*maxRefusing; i++ {
		c := dialFrom(t, "127.0.0.1", l.Addr().String())
		_, _ = c.Write([]byte("OPTIONS * RTSP/1.0\r\n")) // and never reads
	}
	poll(t, "refusals", func() bool { return l.Stats().RefusedMaxConnsPerIP == 2*maxRefusing })
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close waited %s for refusals", d)
	}
}

// While descriptors run short, a refusal does not hold one for the
// linger time: the refused connection is closed at once.
func TestNoLingerUnderDescriptorPressure(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Listener: inner, err: acceptErr(syscall.EMFILE)}
	f.fails.Store(1)
	l := Wrap(f, ListenerOptions{Name: "t", MaxConnsPerIP: 1, Busy: RTSPBusy})
	conns, _ := acceptAll(t, l)
	dialFrom(t, "127.0.0.1", l.Addr().String())
	accepted(t, conns)
	c := dialFrom(t, "127.0.0.1", l.Addr().String()) // never closes its side
	poll(t, "refusal", func() bool { return l.Stats().RefusedMaxConnsPerIP == 1 })
	l.mu.Lock()
	lingering := len(l.refusing)
	l.mu.Unlock()
	if lingering != 0 {
		t.Fatalf("%d refusals linger right after an accept error", lingering)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("refused connection not closed: %v", err)
	}
}
