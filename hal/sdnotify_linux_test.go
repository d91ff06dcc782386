//go:build linux

package hal

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listenNotify stands in for systemd: a unixgram socket whose datagrams
// are delivered on the returned channel.
func listenNotify(t *testing.T) (*notifier, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	msgs := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return newNotifier(func(k string) string {
		if k == "NOTIFY_SOCKET" {
			return path
		}
		return ""
	}), msgs
}

func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s")
		return ""
	}
}

func TestSuperviseReadyWatchdogStopping(t *testing.T) {
	n, msgs := listenNotify(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	result := make(chan error, 1)
	go func() {
		result <- n.supervise(ctx, 10*time.Millisecond, func(ctx context.Context) error {
			Ready(ctx)
			Ready(ctx) // a second call must not send READY=1 again
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	if m := next(t, msgs); m != "READY=1" {
		t.Fatalf("first notification = %q, want READY=1", m)
	}
	for i := range 3 {
		if m := next(t, msgs); m != "WATCHDOG=1" {
			t.Fatalf("notification %d after ready = %q, want WATCHDOG=1", i, m)
		}
	}
	cancel() // what SIGTERM does in RunService
	for {
		m := next(t, msgs)
		if m == "WATCHDOG=1" {
			continue // a ping may have been on its way
		}
		if m != "STOPPING=1" {
			t.Fatalf("notification after stop = %q, want STOPPING=1", m)
		}
		break
	}
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("supervise = %v, want run's context.Canceled", err)
	}
}

// Without Ready no watchdog pings are sent: systemd arms the watchdog only
// after start-up, and a failed start must not look alive.
func TestSuperviseFailureWithoutReady(t *testing.T) {
	n, msgs := listenNotify(t)
	boom := errors.New("listen rtsp: address in use\nsecond line")
	err := n.supervise(context.Background(), time.Millisecond, func(ctx context.Context) error {
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("supervise = %v, want run's error", err)
	}
	want := "STOPPING=1\nSTATUS=listen rtsp: address in use second line"
	if m := next(t, msgs); m != want {
		t.Fatalf("notification = %q, want %q", m, want)
	}
}

func TestSuperviseWithoutSystemd(t *testing.T) {
	var n *notifier // no $NOTIFY_SOCKET
	err := n.supervise(context.Background(), time.Millisecond, func(ctx context.Context) error {
		Ready(ctx)
		return nil
	})
	if err != nil {
		t.Fatalf("supervise = %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	pid := 4242
	cases := []struct {
		usec, wpid string
		want       time.Duration
	}{
		{"", "", 0},
		{"0", "", 0},
		{"junk", "", 0},
		{"30000000", "", 15 * time.Second},
		{"30000000", strconv.Itoa(pid), 15 * time.Second},
		{"30000000", "1", 0}, // meant for another process
	}
	for _, c := range cases {
		env := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.wpid}
		if got := watchdogInterval(func(k string) string { return env[k] }, pid); got != c.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: interval = %v, want %v", c.usec, c.wpid, got, c.want)
		}
	}
}
