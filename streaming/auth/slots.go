package auth

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// slots bounds the memory of argon2 verifications running at once: each
// takes its hash's memory parameter out of size, and waits in line while
// that does not fit. One verification always runs, whatever its weight
// (weights are capped at size).
//
// Waiting is first come first served within two classes: sources without
// recent failures are served before sources with some, so a legitimate
// login is not stuck behind an attacker's queued guesses. The line is
// bounded (maxWait) and every wait has a deadline; who cannot get in is
// refused, never parked for good.
//
// Once nothing runs or waits for idleDelay, idle is called: the Go runtime
// keeps freed heap mapped for minutes, and argon2 buffers are large.
type slots struct {
	size    int64
	maxWait int
	timeout time.Duration

	mu      sync.Mutex
	used    int64
	waiting [2]list.List // of *waiter; [0] clean sources, [1] suspect
	closed  bool

	idle      func() // nil: nothing to do when idle
	idleDelay time.Duration
	idleTimer *time.Timer
	idleArmed bool
	idleWG    sync.WaitGroup // a running idle call
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when the slot is granted
}

func newSlots(size int64, maxWait int, timeout time.Duration, idle func(), idleDelay time.Duration) *slots {
	s := &slots{size: size, maxWait: maxWait, timeout: timeout, idle: idle, idleDelay: idleDelay}
	if idle != nil {
		s.idleTimer = time.AfterFunc(time.Hour, s.fireIdle)
		s.idleTimer.Stop()
	}
	return s
}

// acquire takes n bytes (capped at size), waiting at most s.timeout and
// while ctx lives; it returns the weight to release, or ErrBusy.
func (s *slots) acquire(ctx context.Context, n int64, suspect bool) (int64, error) {
	n = min(max(n, 1), s.size)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrBusy
	}
	if s.used+n <= s.size && s.waiting[0].Len()+s.waiting[1].Len() == 0 {
		s.used += n
		s.mu.Unlock()
		return n, nil
	}
	if s.waiting[0].Len()+s.waiting[1].Len() >= s.maxWait {
		s.mu.Unlock()
		return 0, ErrBusy
	}
	class := 0
	if suspect {
		class = 1
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := s.waiting[class].PushBack(w)
	s.mu.Unlock()

	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
	case <-t.C:
	}
	s.mu.Lock()
	select {
	case <-w.ready:
		// Granted while giving up: give it back.
		s.used -= n
	default:
		s.waiting[class].Remove(e)
	}
	s.grant()
	s.mu.Unlock()
	return 0, ErrBusy
}

// release gives back what acquire returned.
func (s *slots) release(n int64) {
	s.mu.Lock()
	s.used -= n
	s.grant()
	if s.used == 0 && s.idleTimer != nil && !s.idleArmed && !s.closed {
		s.idleArmed = true
		s.idleTimer.Reset(s.idleDelay)
	}
	s.mu.Unlock()
}

// grant lets in waiters in order while they fit; s.mu is held. The head
// of the line waits for room rather than being overtaken, so a heavy
// verification is not starved by light ones.
func (s *slots) grant() {
	for c := range s.waiting {
		q := &s.waiting[c]
		for e := q.Front(); e != nil; e = q.Front() {
			w := e.Value.(*waiter)
			if s.used+w.n > s.size {
				return
			}
			s.used += w.n
			q.Remove(e)
			close(w.ready)
		}
	}
}

func (s *slots) fireIdle() {
	s.mu.Lock()
	run := s.idleArmed && !s.closed && s.used == 0
	s.idleArmed = false
	if run {
		s.idleWG.Add(1)
	}
	s.mu.Unlock()
	if run {
		defer s.idleWG.Done()
		s.idle()
	}
}

// close refuses new verifications and stops the idle timer, waiting for a
// running idle call.
func (s *slots) close() {
	s.mu.Lock()
	s.closed = true
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.mu.Unlock()
	s.idleWG.Wait()
}
