package uplink

import (
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	b := newBackoff(time.Second, 60*time.Second)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		w *= time.Second
		d := b.next()
		if d < w/2 || d > w {
			t.Fatalf("step %d: %s outside [%s, %s]", i, d, w/2, w)
		}
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Fatalf("after reset: %s", d)
	}
	// Jitter: many draws at the cap are not all equal.
	seen := map[time.Duration]bool{}
	for range 20 {
		b.cur = 60 * time.Second
		seen[b.next()] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter")
	}
}
