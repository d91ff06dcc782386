package rtspserver

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// freeDelay is how long after the last reader of a stream left, or a
// stream closed, the server hands freed memory back to the OS.
const freeDelay = 5 * time.Second

// memReturner returns the memory of readers that are gone: their session
// buffers, queues and goroutine stacks are garbage the Go runtime would
// otherwise keep mapped for minutes. It runs debug.FreeOSMemory (a full
// collection) at most once per freeDelay, and only after readers left, so
// a busy relay never pays for it.
type memReturner struct {
	mu     sync.Mutex
	timer  *time.Timer
	armed  bool
	closed bool
	delay  time.Duration
	free   func()
}

func newMemReturner() *memReturner {
	m := &memReturner{delay: freeDelay, free: freeOSMemory}
	m.timer = time.AfterFunc(time.Hour, m.fire)
	m.timer.Stop()
	return m
}

// soon schedules one return of memory freeDelay from now, unless one is
// already scheduled.
func (m *memReturner) soon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.armed || m.closed {
		return
	}
	m.armed = true
	m.timer.Reset(m.delay)
}

func (m *memReturner) fire() {
	m.mu.Lock()
	run := m.armed && !m.closed
	m.armed = false
	m.mu.Unlock()
	if run {
		m.free()
	}
}

// freeOSMemory collects twice before returning memory: sync.Pools (the
// packet pool, the connections' hold buffers) keep their items through one
// collection as victims and drop them in the next.
func freeOSMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func (m *memReturner) close() {
	m.mu.Lock()
	m.closed = true
	m.timer.Stop()
	m.mu.Unlock()
}
