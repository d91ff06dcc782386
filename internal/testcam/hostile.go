package testcam

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// The helpers below play the hostile client of the attacker tests: raw
// TCP from chosen loopback source addresses, and checks that the server
// let go of what the attack made it hold.

// DialFrom connects to addr (on 127.0.0.1) from the loopback address src,
// e.g. 127.0.0.2: still loopback, but another client as far as per-address
// caps are concerned. It skips the test where the system does not route
// the whole of 127.0.0.0/8 to lo. The connection is closed at cleanup.
func DialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		var se *os.SyscallError
		if src != "127.0.0.1" && errors.As(err, &se) {
			t.Skipf("cannot dial from %s: %v", src, err)
		}
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ReadUntilClosed reads c until the server closes it and returns what it
// sent; it fails the test if c is still open after within.
func ReadUntilClosed(t testing.TB, c net.Conn, within time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection from %s still open after %s (read %q)", c.LocalAddr(), within, b)
	}
	return string(b)
}

// Goroutines waits until at most base+slack goroutines run, polling up to
// within; it fails the test with the goroutine dump otherwise.
func Goroutines(t testing.TB, base, slack int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d+%d:\n%s", n, base, slack, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
