package streaming

import (
	"context"
	"sync"
	"sync/atomic"
)

// Queue is a bounded FIFO of packets between a stream's writer and a
// reader's own goroutine. Push never blocks: a full queue drops the packet
// and, for video, every packet until the next keyframe so the reader's
// decoder resumes on a clean picture. Drops are counted.
type Queue struct {
	mu      sync.Mutex
	buf     []*Packet // ring, grown on demand up to max
	max     int
	head    int
	n       int
	closed  bool
	signal  chan struct{}
	skipKey bool // dropping H.264/H.265 until the next keyframe

	dropped atomic.Uint64
}

// queueInitial is a new queue's ring size. A reader that keeps up never
// holds more than an access unit or two; the ring grows (doubling) only
// for bursts such as the keyframe group a new reader starts with, so 50
// readers do not each keep the full bound allocated.
const queueInitial = 64

// NewQueue returns a queue holding at most size packets (default 512).
func NewQueue(size int) *Queue {
	if size <= 0 {
		size = 512
	}
	return &Queue{buf: make([]*Packet, min(size, queueInitial)), max: size, signal: make(chan struct{}, 1)}
}

// room makes space for one more packet, growing the ring up to max; it
// reports false when the queue is full. q.mu is held.
func (q *Queue) room() bool {
	if q.n < len(q.buf) {
		return true
	}
	if len(q.buf) >= q.max {
		return false
	}
	nb := make([]*Packet, min(2*len(q.buf), q.max))
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
	return true
}

// Push enqueues p (retaining it). It returns false when p was dropped.
func (q *Queue) Push(p *Packet) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	video := p.Keyed
	if q.skipKey && video {
		if !p.Key {
			q.mu.Unlock()
			q.dropped.Add(1)
			return false
		}
		q.skipKey = false
	}
	if !q.room() {
		if video {
			q.skipKey = true
		}
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	p.Retain()
	q.buf[(q.head+q.n)%len(q.buf)] = p
	q.n++
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return true
}

// PushAll enqueues ps in order like Push, waking the reader once, and
// returns how many were dropped.
func (q *Queue) PushAll(ps []*Packet) (dropped int) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.dropped.Add(uint64(len(ps)))
		return len(ps)
	}
	for _, p := range ps {
		video := p.Keyed
		if q.skipKey && video {
			if !p.Key {
				dropped++
				continue
			}
			q.skipKey = false
		}
		if !q.room() {
			if video {
				q.skipKey = true
			}
			dropped++
			continue
		}
		p.Retain()
		q.buf[(q.head+q.n)%len(q.buf)] = p
		q.n++
	}
	q.mu.Unlock()
	if dropped > 0 {
		q.dropped.Add(uint64(dropped))
	}
	if dropped < len(ps) {
		select {
		case q.signal <- struct{}{}:
		default:
		}
	}
	return dropped
}

// Pop moves up to len(dst) queued packets into dst, waiting until at least
// one is there, the queue is closed (0, ErrStreamClosed) or ctx ends.
// The caller owns one reference to each returned packet.
func (q *Queue) Pop(ctx context.Context, dst []*Packet) (int, error) {
	for {
		q.mu.Lock()
		if k := q.take(dst); k > 0 {
			q.mu.Unlock()
			return k, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return 0, ErrStreamClosed
		}
		select {
		case <-q.signal:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// TryPop moves up to len(dst) queued packets into dst without waiting and
// returns how many; the caller owns one reference to each.
func (q *Queue) TryPop(dst []*Packet) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.take(dst)
}

// take moves up to len(dst) packets into dst; q.mu is held.
func (q *Queue) take(dst []*Packet) int {
	k := 0
	for k < len(dst) && q.n > 0 {
		dst[k] = q.buf[q.head]
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		k++
	}
	return k
}

// Close wakes Pop and releases queued packets. Later Pushes drop.
func (q *Queue) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	for q.n > 0 {
		q.buf[q.head].Release()
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// Len is the number of queued packets.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Dropped is the number of packets dropped because the reader was slow.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }
