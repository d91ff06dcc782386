package record

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/camgate/camgate/streaming"
)

// Event types the recorder raises.
const (
	// EventError is a segment that could not be created, written or
	// closed, or a part dropped for lack of space.
	EventError = "record.error"
	// EventDeleted tells how many segments retention deleted, and why.
	EventDeleted = "record.deleted"
	// EventUnsupported names the tracks of a stream that are not recorded.
	EventUnsupported = "record.unsupported"
)

// Reasons for deleting segments.
const (
	reasonAge     = "recordDeleteAfter"
	reasonMaxSize = "recordMaxBytes"
	reasonMinFree = "recordMinFreeBytes"
)

// coalescer keeps events from flooding the uplink: the first occurrence of
// an error is raised at once, its repeats are counted and told in one
// event per interval; deletions are only ever told as counts per interval.
type coalescer struct {
	sink streaming.EventSink

	mu      sync.Mutex
	repeats map[evKey]int // errors raised this interval, with their repeats
	deleted map[delKey]*delCount
}

type evKey struct{ typ, path, detail string }

type delKey struct{ path, reason string }

type delCount struct {
	n     int
	bytes int64
}

func newCoalescer(sink streaming.EventSink) *coalescer {
	return &coalescer{sink: sink, repeats: map[evKey]int{}, deleted: map[delKey]*delCount{}}
}

// report raises an event unless the same one was raised this interval.
func (c *coalescer) report(typ, path, detail string) {
	k := evKey{typ, path, detail}
	c.mu.Lock()
	n, seen := c.repeats[k]
	c.repeats[k] = n + 1
	c.mu.Unlock()
	if !seen {
		c.sink.Event(streaming.Event{Type: typ, Path: path, Detail: detail})
	}
}

// deletedSegment counts one deletion for the next flush.
func (c *coalescer) deletedSegment(path, reason string, bytes int64) {
	c.mu.Lock()
	d := c.deleted[delKey{path, reason}]
	if d == nil {
		d = &delCount{}
		c.deleted[delKey{path, reason}] = d
	}
	d.n++
	d.bytes += bytes
	c.mu.Unlock()
}

// flush raises the counts of the interval that ends.
func (c *coalescer) flush(interval time.Duration) {
	c.mu.Lock()
	repeats, deleted := c.repeats, c.deleted
	c.repeats, c.deleted = map[evKey]int{}, map[delKey]*delCount{}
	c.mu.Unlock()
	var evs []streaming.Event
	for k, n := range repeats {
		if n > 1 {
			evs = append(evs, streaming.Event{Type: k.typ, Path: k.path,
				Detail: fmt.Sprintf("%s (%d more times in %s)", k.detail, n-1, interval)})
		}
	}
	for k, d := range deleted {
		evs = append(evs, streaming.Event{Type: EventDeleted, Path: k.path,
			Detail: fmt.Sprintf("deleted %d segment(s), %s, for %s", d.n, formatBytes(d.bytes), k.reason)})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].Path != evs[j].Path {
			return evs[i].Path < evs[j].Path
		}
		return evs[i].Detail < evs[j].Detail
	})
	for _, ev := range evs {
		c.sink.Event(ev)
	}
}

func formatBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", b)
}
