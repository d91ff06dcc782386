package uplink_test

import (
	"fmt"
	"sync"

	"github.com/camgate/camgate/uplink"
)

// memOutbox is an in-memory uplink.Outbox that records how many messages
// were handed out and not yet acknowledged.
type memOutbox struct {
	mu     sync.Mutex
	msgs   []uplink.Message
	seq    uint64
	handed map[uint64]bool
	maxOut int
	signal chan struct{}
}

func newMemOutbox() *memOutbox {
	return &memOutbox{handed: map[uint64]bool{}, signal: make(chan struct{}, 1)}
}

func (o *memOutbox) add(kind string) {
	o.mu.Lock()
	o.seq++
	o.msgs = append(o.msgs, uplink.Message{Seq: o.seq, Kind: kind, Payload: fmt.Appendf(nil, `{"seq":%d}`, o.seq)})
	o.mu.Unlock()
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

func (o *memOutbox) Pending(after uint64, max int) ([]uplink.Message, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []uplink.Message
	for _, m := range o.msgs {
		if m.Seq > after && len(out) < max {
			out = append(out, m)
			o.handed[m.Seq] = true
		}
	}
	if len(o.handed) > o.maxOut {
		o.maxOut = len(o.handed)
	}
	return out, nil
}

func (o *memOutbox) Acked(seqs ...uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range seqs {
		delete(o.handed, s)
		for i, m := range o.msgs {
			if m.Seq == s {
				o.msgs = append(o.msgs[:i], o.msgs[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (o *memOutbox) Appended() <-chan struct{} { return o.signal }

func (o *memOutbox) maxOutstanding() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxOut
}
