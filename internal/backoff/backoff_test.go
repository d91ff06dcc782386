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
