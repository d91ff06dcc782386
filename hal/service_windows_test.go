//go:build windows

package hal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
)

// recordingLog is an EventLog that keeps what was written.
type recordingLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *recordingLog) add(kind, msg string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, kind+": "+msg)
	return nil
}
func (l *recordingLog) Info(m string) error    { return l.add("info", m) }
func (l *recordingLog) Warning(m string) error { return l.add("warning", m) }
func (l *recordingLog) Error(m string) error   { return l.add("error", m) }
func (l *recordingLog) Close() error           { return nil }

// execute runs the handler as svc.Run would, feeding it the given control
// requests once it reports Running, and returns its exit code and the
// states it reported.
func execute(t *testing.T, h *serviceHandler, cmds ...svc.Cmd) (bool, uint32, []svc.State) {
	t.Helper()
	req := make(chan svc.ChangeRequest)
	status := make(chan svc.Status)
	type result struct {
		specific bool
		code     uint32
	}
	done := make(chan result, 1)
	go func() {
		s, c := h.Execute(nil, req, status)
		done <- result{s, c}
	}()
	var states []svc.State
	timeout := time.After(10 * time.Second)
	for {
		select {
		case st := <-status:
			states = append(states, st.State)
			if st.State == svc.Running {
				if st.Accepts&svc.AcceptPreShutdown == 0 || st.Accepts&svc.AcceptStop == 0 {
					t.Errorf("running status accepts %v, want stop and pre-shutdown", st.Accepts)
				}
				for _, c := range cmds {
					req <- svc.ChangeRequest{Cmd: c, CurrentStatus: st}
					if c == svc.Interrogate {
						if got := <-status; got.State != svc.Running {
							t.Errorf("interrogate answered %v", got.State)
						}
					}
				}
			}
		case r := <-done:
			return r.specific, r.code, states
		case <-timeout:
			t.Fatal("handler did not return within 10 s")
		}
	}
}

func TestServiceHandlerStopsOnRequest(t *testing.T) {
	for _, cmd := range []svc.Cmd{svc.Stop, svc.Shutdown, svc.PreShutdown} {
		t.Run(fmt.Sprint(cmd), func(t *testing.T) {
			elog := &recordingLog{}
			h := &serviceHandler{name: "camgate", elog: elog, run: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			}}
			specific, code, states := execute(t, h, svc.Interrogate, cmd)
			if specific || code != 0 || h.err != nil {
				t.Fatalf("exit (%v, %d), err %v; want a clean stop", specific, code, h.err)
			}
			if states[len(states)-1] != svc.StopPending {
				t.Errorf("states %v: want stop pending reported before returning", states)
			}
			if len(elog.msgs) != 2 || elog.msgs[0] != "info: camgate started" || elog.msgs[1] != "info: camgate stopped" {
				t.Errorf("event log = %q", elog.msgs)
			}
		})
	}
}

func TestServiceHandlerReportsFailure(t *testing.T) {
	boom := errors.New("open store: timeout")
	cases := []struct {
		err  error
		code uint32
		log  string
	}{
		{boom, exitFailed, "error: camgate failed: open store: timeout"},
		{fmt.Errorf("agent.update: %w", ErrRestartRequested), exitRestart, "info: camgate exits to be restarted: agent.update: restart requested"},
	}
	for _, c := range cases {
		elog := &recordingLog{}
		h := &serviceHandler{name: "camgate", elog: elog, run: func(ctx context.Context) error { return c.err }}
		specific, code, _ := execute(t, h)
		if !specific || code != c.code {
			t.Errorf("%v: exit (%v, %d), want service-specific %d so recovery restarts it", c.err, specific, code, c.code)
		}
		if !errors.Is(h.err, c.err) {
			t.Errorf("%v: RunService would return %v", c.err, h.err)
		}
		if len(elog.msgs) != 2 || elog.msgs[1] != c.log {
			t.Errorf("%v: event log = %q, want last %q", c.err, elog.msgs, c.log)
		}
	}
}

func TestIsServiceFalseInTests(t *testing.T) {
	if IsService() {
		t.Fatal("a test binary is not a service")
	}
}
