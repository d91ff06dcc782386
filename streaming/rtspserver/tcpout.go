package rtspserver

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"

	"github.com/camgate/camgate/streaming"
)

// tcpBatch bounds the packets a TCP reader's writer takes from its queue
// at once.
const tcpBatch = 64

// tcpWire is what a TCP reader's session told its client in the SETUP
// responses: the interleaved channel and the SSRC of every media set up.
type tcpWire struct {
	channel []int // by media index; -1: not set up
	ssrc    []uint32
}

// tcpOut writes a TCP reader's packets straight into its connection: each
// packet is marshalled once for all readers (Packet.Marshalled), framed and
// stamped with the session's SSRC here, and a batch goes out in one write.
// The stream's goroutine only pushes into the queue; one goroutine per
// reader writes.
type tcpOut struct {
	q       *streaming.Queue
	wire    tcpWire
	conn    *batchConn
	ss      *gortsplib.ServerSession
	sc      *gortsplib.ServerConn
	st      *streaming.Stream
	timeout time.Duration

	ctx       context.Context
	cancel    context.CancelFunc
	start     chan struct{} // closed once the PLAY response is out
	startOnce sync.Once
}

func newTCPOut(q *streaming.Queue, wire tcpWire, conn *batchConn, ss *gortsplib.ServerSession, sc *gortsplib.ServerConn, st *streaming.Stream, timeout time.Duration) *tcpOut {
	ctx, cancel := context.WithCancel(context.Background())
	return &tcpOut{q: q, wire: wire, conn: conn, ss: ss, sc: sc, st: st, timeout: timeout, ctx: ctx, cancel: cancel, start: make(chan struct{})}
}

// begin lets the writer send: the PLAY response has been written.
func (t *tcpOut) begin() { t.startOnce.Do(func() { close(t.start) }) }

// stop ends the writer and drops what is queued.
func (t *tcpOut) stop() {
	t.cancel()
	t.q.Close()
}

func (t *tcpOut) run() {
	defer t.drain()
	select {
	case <-t.start:
	case <-t.ctx.Done():
		return
	}
	var batch [tcpBatch]*streaming.Packet
	for {
		n, err := t.q.Pop(t.ctx, batch[:])
		if err != nil {
			return
		}
		if err := t.write(batch[:n]); err != nil {
			t.ss.Close()
			t.sc.Close()
			return
		}
	}
}

// write sends ps (releasing them) in writes of at most batchMax bytes.
func (t *tcpOut) write(ps []*streaming.Packet) error {
	bp := batchBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for i, p := range ps {
		w := p.Marshalled()
		if len(w) >= 12 && err == nil {
			if len(buf) > 0 && len(buf)+4+len(w) > batchMax {
				err = t.conn.writeBatch(buf, t.timeout)
				buf = buf[:0]
			}
			ch := t.wire.channel[p.MediaIndex]
			buf = append(buf, '$', byte(ch), byte(len(w)>>8), byte(len(w)))
			off := len(buf)
			buf = append(buf, w...)
			binary.BigEndian.PutUint32(buf[off+8:], t.wire.ssrc[p.MediaIndex])
		}
		if err != nil {
			t.st.CountDropped(uint64(len(ps) - i))
			for _, q := range ps[i:] {
				q.Release()
			}
			break
		}
		p.Release()
		ps[i] = nil
	}
	if err == nil && len(buf) > 0 {
		err = t.conn.writeBatch(buf, t.timeout)
	}
	*bp = buf[:0]
	batchBufs.Put(bp)
	return err
}

// drain releases what is left in the queue once the writer ends.
func (t *tcpOut) drain() { t.q.Close() }
