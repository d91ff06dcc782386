package update

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
)

// TrialMode reads the environment the supervising agent gives a
// candidate: onTrial when this process is on trial, asService when the
// supervisor runs under a service manager (the candidate then uses the
// service's directories although its parent is not the manager).
func TrialMode(getenv func(string) string) (onTrial, asService bool) {
	v := getenv(envTrial)
	return v != "", v == "service"
}

// Redirected reports whether this process was started by the installed
// binary's redirect or a hand-over, and must not redirect again.
func Redirected(getenv func(string) string) bool { return getenv(envRedirected) != "" }

// RedirectEnv is env marked for Redirected, for a binary that takes over
// this process (the service manager's notify socket and watchdog stay).
func RedirectEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != envTrial && k != envRedirected {
			out = append(out, kv)
		}
	}
	return append(out, envRedirected+"=1")
}

// TrialLink is the candidate's side of the trial protocol (see RunTrial).
type TrialLink struct {
	out       io.Writer
	once      sync.Once
	done      chan struct{}
	committed bool // set before done is closed
}

// NewTrialLink speaks the protocol over in (the candidate's standard
// input) and out (its standard output). Its reader ends when the
// supervisor closes in, which it does when the trial ends or it dies.
func NewTrialLink(in io.Reader, out io.Writer) *TrialLink {
	t := &TrialLink{out: out, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == lineCommitted {
				t.committed = true
				break
			}
		}
		close(t.done)
	}()
	return t
}

// Healthy tells the supervisor that the trial criteria hold. Only the
// first call writes.
func (t *TrialLink) Healthy() error {
	var err error
	t.once.Do(func() {
		_, err = fmt.Fprintln(t.out, lineHealthy)
	})
	return err
}

// Done is closed when the trial is over for this process: committed (stop
// gracefully, the supervisor hands over) or not (the supervisor gave up
// or is gone).
func (t *TrialLink) Done() <-chan struct{} { return t.done }

// Committed reports, once Done is closed, whether the supervisor
// committed this binary.
func (t *TrialLink) Committed() bool {
	select {
	case <-t.done:
		return t.committed
	default:
		return false
	}
}
