package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		d := b.Next()
		hi := w * time.Second
		if d < hi/2 || d > hi {
			t.Fatalf("attempt %d: %v not in [%v, %v]", i, d, hi/2, hi)
		}
	}
	b.Reset()
	if d := b.Next(); d > time.Second {
		t.Fatalf("after reset: %v", d)
	}
}

func TestZeroValue(t *testing.T) {
	var b Backoff
	if d := b.Next(); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("zero value first delay %v", d)
	}
}

// TestJitterSpreads: many backoffs at the same step draw delays spread
// over [d/2, d], so boxes or paths that failed together do not retry in
// step.
func TestJitterSpreads(t *testing.T) {
	const n = 200
	seen := map[time.Duration]bool{}
	lo, hi := time.Hour, time.Duration(0)
	for range n {
		b := Backoff{Min: time.Second, Max: time.Second}
		d := b.Next()
		seen[d/time.Millisecond] = true
		lo, hi = min(lo, d), max(hi, d)
	}
	// 200 uniform draws over 500 ms: about 165 different
	// milliseconds (without jitter: one), reaching close to both ends.
	if len(seen) < n/2 {
		t.Fatalf("%d distinct milliseconds in %d draws", len(seen), n)
	}
	if lo > 550*time.Millisecond || hi < 950*time.Millisecond {
		t.Fatalf("draws span only %v to %v of [500ms, 1s]", lo, hi)
	}
}
