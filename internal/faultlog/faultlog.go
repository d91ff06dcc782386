// Package faultlog counts the recurring faults of RTP streams (packets
// lost, packets that do not decode, writes that fail) and logs them at
// most once per interval with the counts since the previous line.
//
// gortsplib reports each of these through a callback and, where none is
// set, prints one line per event on Go's standard logger: outside the
// structured log, unredacted, and as often as a lossy camera or a client
// sending garbage makes it. A Log keeps them in the structured log and
// bounded: the first fault is logged at once, later ones are summed into
// a line per interval.
package faultlog

import (
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/redact"
)

// Log sums faults and logs them; safe for concurrent use.
type Log struct {
	log   zerolog.Logger
	msg   string
	every time.Duration
	now   func() time.Time

	mu                        sync.Mutex
	last                      time.Time // of the last line; zero before the first
	lost, undecodable, unsent uint64
	lastErr, lastFrom         string
	totalLost, totalUndecoded uint64
}

// New returns a Log writing msg lines to log at warn level, at most one
// per every (a minute when every is 0).
func New(log zerolog.Logger, msg string, every time.Duration) *Log {
	if every <= 0 {
		every = time.Minute
	}
	return &Log{log: log, msg: msg, every: every, now: time.Now}
}

// Lost counts n RTP packets lost (sequence gaps) from from (a path or a
// remote address; may be empty).
func (l *Log) Lost(n uint64, from string) {
	l.mu.Lock()
	l.lost += n
	l.totalLost += n
	l.lastFrom = from
	l.maybeLogLocked()
	l.mu.Unlock()
}

// Undecodable counts a packet that did not decode.
func (l *Log) Undecodable(err error, from string) {
	l.mu.Lock()
	l.undecodable++
	l.totalUndecoded++
	l.lastErr, l.lastFrom = redact.Error(err), from
	l.maybeLogLocked()
	l.mu.Unlock()
}

// Unsent counts a packet that could not be written to a reader.
func (l *Log) Unsent(err error, from string) {
	l.mu.Lock()
	l.unsent++
	l.lastErr, l.lastFrom = redact.Error(err), from
	l.maybeLogLocked()
	l.mu.Unlock()
}

// Flush logs what was counted since the last line, if anything.
func (l *Log) Flush() {
	l.mu.Lock()
	if l.lost+l.undecodable+l.unsent > 0 {
		l.logLocked()
	}
	l.mu.Unlock()
}

// Totals are the packets lost and undecodable since New.
func (l *Log) Totals() (lost, undecodable uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.totalLost, l.totalUndecoded
}

func (l *Log) maybeLogLocked() {
	if l.last.IsZero() || l.now().Sub(l.last) >= l.every {
		l.logLocked()
	}
}

func (l *Log) logLocked() {
	e := l.log.Warn()
	if l.lost > 0 {
		e = e.Uint64("packetsLost", l.lost)
	}
	if l.undecodable > 0 {
		e = e.Uint64("undecodable", l.undecodable)
	}
	if l.unsent > 0 {
		e = e.Uint64("unsent", l.unsent)
	}
	if l.lastFrom != "" {
		e = e.Str("from", l.lastFrom)
	}
	if l.lastErr != "" {
		e = e.Str("lastError", l.lastErr)
	}
	if !l.last.IsZero() {
		e = e.Dur("over", l.now().Sub(l.last).Round(time.Second))
	}
	e.Msg(l.msg)
	l.last = l.now()
	l.lost, l.undecodable, l.unsent = 0, 0, 0
	l.lastErr = ""
}
