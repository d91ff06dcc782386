//go:build linux

package hal

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// notifier speaks systemd's notify protocol (sd_notify(3)): one datagram
// of "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET. It is
// written here because it is a few lines; a systemd library would bring
// D-Bus code the agent does not use. A nil notifier (no $NOTIFY_SOCKET:
// not started by systemd, or not Type=notify) sends nothing.
type notifier struct {
	addr *net.UnixAddr
}

// newNotifier reads $NOTIFY_SOCKET through getenv. A leading "@" names an
// abstract socket, which Go's unix addresses understand as is.
func newNotifier(getenv func(string) string) *notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// send delivers one notification such as "READY=1".
func (n *notifier) send(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}

// watchdogInterval is half of $WATCHDOG_USEC, the period systemd
// recommends for WATCHDOG=1 pings, or 0 when the unit has no WatchdogSec
// or the variable is meant for another process ($WATCHDOG_PID).
func watchdogInterval(getenv func(string) string, pid int) time.Duration {
	usec, err := strconv.ParseUint(getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// supervise runs run and keeps systemd informed: READY=1 when the agent
// calls Ready, WATCHDOG=1 every interval from then on until run returns,
// STOPPING=1 as soon as a stop is requested (or run fails by itself, with
// the error as STATUS= for `systemctl status`). Notification errors are
// not fatal: at worst systemd restarts the agent, which is its purpose.
func (n *notifier) supervise(ctx context.Context, interval time.Duration, run func(ctx context.Context) error) error {
	ready := make(chan struct{})
	runCtx := withReady(ctx, func() {
		_ = n.send("READY=1")
		close(ready)
	})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n.watchdog(ready, done, interval)
	}()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			_ = n.send("STOPPING=1")
		case <-done:
		}
	}()
	err := run(runCtx)
	close(done)
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		_ = n.send("STOPPING=1\nSTATUS=" + oneLine(err.Error()))
	}
	return err
}

// watchdog pings from readiness until done. systemd arms the watchdog
// only once start-up has completed, so nothing is sent before ready.
func (n *notifier) watchdog(ready, done <-chan struct{}, interval time.Duration) {
	if n == nil || interval <= 0 {
		return
	}
	select {
	case <-ready:
	case <-done:
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_ = n.send("WATCHDOG=1")
		select {
		case <-t.C:
		case <-done:
			return
		}
	}
}

// oneLine keeps a STATUS= value on its line: a newline would start a new
// KEY=VALUE assignment.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", " ")
}

// withReady returns ctx carrying f, called at most once by Ready.
func withReady(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, readyKey{}, sync.OnceFunc(f))
}
