package uplink

import (
	"context"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// inbox holds received commands between paho's callback, which must never
// block, and the agent, which takes them from Commands() and Busy():
//   - up to CommandQueue commands wait to be run, in arrival order;
//   - commands arriving while that queue is full wait, up to BusyQueue, to
//     be answered busy;
//   - the payloads of both together stay within CommandBytes.
//
// A command that fits nowhere is not acknowledged and not kept: it stays
// with the broker (deferred), and once every command of the session has
// been handled and acknowledged the session is cycled so that the broker
// sends it again (MQTT 3.1.1 resends unacknowledged messages of a resumed
// session, with DUP set). Nothing is dropped.
//
// After a reconnect the broker resends what was not acknowledged, so a
// command may arrive again while its first copy still waits here. Such a
// copy (DUP set, same topic and payload) is not queued twice: its
// acknowledgement joins the waiting entry's, so that handling the command
// once acknowledges it on the live connection too.
type inbox struct {
	maxRun, maxBusy, maxBytes int

	mu       sync.Mutex
	run      []*entry
	busy     []*entry
	waiting  map[string]*entry // by key, every entry of run and busy
	bytes    int
	session  uint64 // counts sessions; acks of earlier ones do not count
	deferred int    // commands of this session left with the broker
	unacked  int    // commands of this session queued or taken, not acked
	wake     chan struct{}
}

// entry is one queued command; in.acks collects the acknowledgements of
// every copy received.
type entry struct {
	in  Incoming
	key string
}

// ackSet acknowledges every copy of a command at once.
type ackSet struct {
	mu    sync.Mutex
	fired bool
	acks  []func()
}

// add adds the acknowledgement of another copy; when the command was
// acknowledged already, it acknowledges the copy at once.
func (s *ackSet) add(ack func()) {
	s.mu.Lock()
	if s.fired {
		s.mu.Unlock()
		ack()
		return
	}
	s.acks = append(s.acks, ack)
	s.mu.Unlock()
}

func (s *ackSet) fire() {
	s.mu.Lock()
	if s.fired {
		s.mu.Unlock()
		return
	}
	s.fired = true
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	for _, a := range acks {
		a()
	}
}

// placement says where put left a command.
type placement uint8

const (
	placedUnknown placement = iota
	placedRun
	placedBusy
	placedDeferred
	placedMerged // a second copy of a waiting command
)

func newInbox(maxRun, maxBusy, maxBytes int) *inbox {
	return &inbox{maxRun: maxRun, maxBusy: maxBusy, maxBytes: maxBytes,
		waiting: map[string]*entry{}, wake: make(chan struct{}, 1)}
}

func inboxKey(in Incoming) string {
	b := "d/"
	if in.Broadcast {
		b = "b/"
	}
	return b + in.Name + "\x00" + string(in.Payload)
}

// put queues in, acknowledged through m; it never blocks.
func (b *inbox) put(in Incoming, m paho.Message) placement {
	n := len(in.Payload)
	key := inboxKey(in)
	b.mu.Lock()
	defer b.signal()
	session := b.session
	ack := func() {
		m.Ack()
		b.acked(session)
	}
	if e, ok := b.waiting[key]; ok && in.Redelivered {
		b.unacked++
		b.mu.Unlock()
		e.in.acks.add(ack) // outside b.mu: it may ack at once
		return placedMerged
	}
	defer b.mu.Unlock()
	fits := b.bytes+n <= b.maxBytes || (len(b.run) == 0 && len(b.busy) == 0)
	var q *[]*entry
	var p placement
	switch {
	case fits && len(b.run) < b.maxRun:
		q, p = &b.run, placedRun
	case fits && len(b.busy) < b.maxBusy:
		q, p = &b.busy, placedBusy
	default:
		b.deferred++
		return placedDeferred
	}
	in.acks = &ackSet{acks: []func(){ack}}
	e := &entry{in: in, key: key}
	*q = append(*q, e)
	if _, dup := b.waiting[key]; !dup {
		b.waiting[key] = e
	}
	b.bytes += n
	b.unacked++
	return p
}

// acked counts an acknowledgement of a command of the given session.
func (b *inbox) acked(session uint64) {
	b.mu.Lock()
	if session == b.session {
		b.unacked--
	}
	b.mu.Unlock()
	b.signal()
}

func (b *inbox) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// heads returns the next command of each queue, and whether commands were
// left with the broker while everything else has been acknowledged.
func (b *inbox) heads() (run Incoming, haveRun bool, busy Incoming, haveBusy bool, redeliver bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.run) > 0 {
		run, haveRun = b.run[0].in, true
	}
	if len(b.busy) > 0 {
		busy, haveBusy = b.busy[0].in, true
	}
	return run, haveRun, busy, haveBusy, b.deferred > 0 && b.unacked == 0 && !haveRun && !haveBusy
}

// pop removes the head of the run or busy queue, which the forwarder has
// handed over: copies arriving from here on are queued anew (and get the
// journaled reply).
func (b *inbox) pop(busy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := &b.run
	if busy {
		q = &b.busy
	}
	e := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil // let the backing array go after a burst
	}
	if b.waiting[e.key] == e {
		delete(b.waiting, e.key)
	}
	b.bytes -= len(e.in.Payload)
}

// len is the number of commands waiting in both queues.
func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.run) + len(b.busy)
}

// newSession starts the counts again: the broker resends whatever was not
// acknowledged, and acknowledgements of the old connection go nowhere.
func (b *inbox) newSession() {
	b.mu.Lock()
	b.session++
	b.deferred, b.unacked = 0, 0
	b.mu.Unlock()
}

// forward hands queued commands to Commands() and Busy() until ctx ends,
// and asks for a new session (redeliver) when commands were left with the
// broker and everything else has been acknowledged.
func (c *Client) forward(ctx context.Context) {
	b := c.inbox
	for {
		run, haveRun, busy, haveBusy, cycle := b.heads()
		if cycle {
			select {
			case c.redeliver <- struct{}{}:
			default:
			}
		}
		var runCh, busyCh chan Incoming
		if haveRun {
			runCh = c.cmds
		}
		if haveBusy {
			busyCh = c.busy
		}
		select {
		case runCh <- run:
			b.pop(false)
		case busyCh <- busy:
			b.pop(true)
		case <-b.wake:
		case <-ctx.Done():
			return
		}
	}
}
