package rtspserver

import (
	"testing"
	"time"
)

// TestMemReturnerOncePerDelay: readers leaving in a burst cause one return
// of memory; a later leave schedules another; none after close.
func TestMemReturnerOncePerDelay(t *testing.T) {
	m := newMemReturner()
	m.delay = 20 * time.Millisecond
	calls := make(chan struct{}, 10)
	m.free = func() { calls <- struct{}{} }
	wait := func() {
		t.Helper()
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatal("memory not returned")
		}
	}
	armed := func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.armed
	}
	for range 3 {
		m.soon()
	}
	wait()
	// Nothing is scheduled any more, so no second return can follow.
	if armed() || len(calls) != 0 {
		t.Fatalf("more than one return scheduled for one burst (armed %v, calls %d)", armed(), len(calls))
	}
	m.soon()
	wait()
	m.close()
	m.soon()
	if armed() {
		t.Fatal("scheduled after close")
	}
}
