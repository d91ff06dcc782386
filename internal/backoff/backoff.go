// Package backoff computes exponential retry delays with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff doubles from Min up to Max. Each delay is drawn uniformly from
// [d/2, d] so a fleet of boxes that lost the same camera or broker does not
// retry in lockstep. The zero value uses 1 s and 30 s.
type Backoff struct {
	Min time.Duration // first delay; default 1 s
	Max time.Duration // ceiling; default 30 s
	cur time.Duration
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = 30 * time.Second
		if hi < lo {
			hi = lo
		}
	}
	if b.cur == 0 {
		b.cur = lo
	} else {
		b.cur *= 2
		if b.cur > hi {
			b.cur = hi
		}
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// Reset starts again from Min, after a healthy period.
func (b *Backoff) Reset() { b.cur = 0 }
