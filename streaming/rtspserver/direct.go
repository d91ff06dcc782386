package rtspserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/pion/rtcp"

	"github.com/camgate/camgate/streaming"
)

// outBatch bounds the packets a reader's writer takes from its queue at
// once.
const outBatch = 64

// wire is what a reader's session told its client in the SETUP
// responses, by media index: the interleaved channel (TCP) or the client's
// RTP port (UDP), and the SSRC.
type wire struct {
	channel     []int // TCP; -1: not set up
	rtcpChannel []int // TCP
	port        []int // UDP; 0: not set up
	rtcpPort    []int // UDP
	ssrc        []uint32
}

func newWire(medias int) wire {
	w := wire{channel: make([]int, medias), rtcpChannel: make([]int, medias), port: make([]int, medias),
		rtcpPort: make([]int, medias), ssrc: make([]uint32, medias)}
	for i := range w.channel {
		w.channel[i] = -1
	}
	return w
}

func (w wire) clone() wire {
	return wire{channel: slices.Clone(w.channel), rtcpChannel: slices.Clone(w.rtcpChannel), port: slices.Clone(w.port),
		rtcpPort: slices.Clone(w.rtcpPort), ssrc: slices.Clone(w.ssrc)}
}

// setUp reports whether media i was set up by the reader.
func (w wire) setUp(i int) bool { return w.channel[i] >= 0 || w.port[i] > 0 }

// directOut writes a reader's packets itself instead of through its
// gortsplib session: each packet is marshalled once for all readers
// (Packet.Marshalled) and only stamped with the session's SSRC here, and
// the reader gets RTCP sender reports of its own.
//
//   - TCP: the packets are framed as interleaved frames and an access unit
//     goes out in one write (gortsplib would write every frame with a
//     syscall of its own): inline from the stream's goroutine while the
//     reader keeps up (deliver), else from the reader's own goroutine
//     through its queue.
//   - UDP: from the server's RTP socket, with no allocation and no
//     deadline per packet (gortsplib allocates a buffer and a closure per
//     packet and reader). On Linux an access unit goes out in one
//     sendmmsg(2), inline like TCP (udpsend_linux.go); elsewhere the
//     reader's goroutine sends a datagram per packet.
type directOut struct {
	q         *streaming.Queue
	wire      wire
	conn      *batchConn       // TCP
	udp       *udpSocket       // UDP
	rtcp      *udpSocket       // UDP: the server's RTCP socket, for sender reports
	addrs     []netip.AddrPort // UDP, by media index
	dests     []udpDest        // UDP, by media index, for sendmmsg
	rtcpAddrs []netip.AddrPort // UDP
	// sent counts, by media index, the packets and payload octets written,
	// for the sender reports (RFC 3550 6.4.1).
	sent    []sentCount
	srTimer *time.Timer
	ss      *gortsplib.ServerSession
	sc      *gortsplib.ServerConn
	st      *streaming.Stream
	timeout time.Duration

	ctx       context.Context
	cancel    context.CancelFunc
	start     chan struct{} // closed once the PLAY response is out
	startOnce sync.Once

	// A TCP reader that keeps up is written inline by deliver, on the
	// stream's goroutine, with writes that do not wait (inlineWrites).
	// Once the socket does not take a whole access unit, the writer
	// goroutine owns the output (busy) until it has sent what was kept
	// and emptied the queue; meanwhile deliver queues.
	mu   sync.Mutex
	busy bool
	kick chan struct{}
	one  [1]*streaming.Packet
}

func newDirectOut(q *streaming.Queue, w wire, ss *gortsplib.ServerSession, sc *gortsplib.ServerConn, st *streaming.Stream, timeout time.Duration) *directOut {
	ctx, cancel := context.WithCancel(context.Background())
	t := &directOut{q: q, wire: w, ss: ss, sc: sc, st: st, timeout: timeout, ctx: ctx, cancel: cancel,
		start: make(chan struct{}), busy: true, kick: make(chan struct{}, 1), sent: make([]sentCount, len(w.ssrc))}
	t.srTimer = time.AfterFunc(time.Hour, t.reportTick)
	t.srTimer.Stop()
	return t
}

// reportTick sends the sender reports and schedules the next ones.
func (t *directOut) reportTick() {
	if t.ctx.Err() != nil {
		return
	}
	t.sendReports(time.Now())
	t.srTimer.Reset(srPeriod)
}

type sentCount struct{ packets, octets atomic.Uint32 }

// count records ps as written.
func (t *directOut) count(ps []*streaming.Packet) {
	for _, p := range ps {
		c := &t.sent[p.MediaIndex]
		c.packets.Add(1)
		c.octets.Add(uint32(len(p.RTP.Payload)))
	}
}

// deliver sends ps (an access unit, or one packet) without waiting and
// returns how many were lost. The caller keeps its references.
func (t *directOut) deliver(ps []*streaming.Packet) (lost int) {
	if !t.inline() {
		return t.q.PushAll(ps)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy {
		return t.q.PushAll(ps)
	}
	if t.udp != nil {
		done, err := t.sendUDP(ps, false)
		if err != nil {
			t.ss.Close()
			t.sc.Close()
			return len(ps) - done
		}
		if done == len(ps) {
			return 0
		}
		lost = t.q.PushAll(ps[done:])
		t.handOver()
		return lost
	}
	bp := batchBufs.Get().(*[]byte)
	buf := t.frame((*bp)[:0], ps)
	res, err := t.conn.tryWrite(buf, t.timeout)
	*bp = buf
	putBatchBuf(bp)
	if err != nil {
		// The connection failed: its session ends, as when the writer
		// goroutine fails.
		t.ss.Close()
		t.sc.Close()
		return len(ps)
	}
	if res != tryNotWritten {
		t.count(ps)
	}
	if res == trySent {
		return 0
	}
	if res == tryNotWritten {
		lost = t.q.PushAll(ps)
	}
	t.handOver()
	return lost
}

// inline reports whether deliver writes itself while the reader keeps up.
func (t *directOut) inline() bool {
	if t.udp != nil {
		return udpInline
	}
	return t.conn != nil && t.conn.raw != nil
}

// handOver gives the output to the writer goroutine: what tryWrite kept,
// then the queue; t.mu is held.
func (t *directOut) handOver() {
	t.busy = true
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// deliverOne is deliver for a single packet.
func (t *directOut) deliverOne(p *streaming.Packet) bool {
	t.one[0] = p
	lost := t.deliver(t.one[:])
	t.one[0] = nil
	return lost == 0
}

// frame appends ps to buf as interleaved frames stamped with the
// session's SSRCs.
func (t *directOut) frame(buf []byte, ps []*streaming.Packet) []byte {
	for _, p := range ps {
		w := p.Marshalled()
		if len(w) < 12 {
			continue
		}
		ch := t.wire.channel[p.MediaIndex]
		buf = append(buf, '$', byte(ch), byte(len(w)>>8), byte(len(w)))
		off := len(buf)
		buf = append(buf, w...)
		binary.BigEndian.PutUint32(buf[off+8:], t.wire.ssrc[p.MediaIndex])
	}
	return buf
}

// begin lets the writer send: the PLAY response has been written.
func (t *directOut) begin() { t.startOnce.Do(func() { close(t.start) }) }

// stop ends the writer and drops what is queued.
func (t *directOut) stop() {
	t.cancel()
	t.q.Close()
	t.srTimer.Stop()
}

// srPeriod is how often readers get an RTCP sender report per media, the
// first srFirst after PLAY.
const (
	srPeriod = 5 * time.Second
	srFirst  = 300 * time.Millisecond
)

// sendReports sends the reader an RTCP sender report for every media it
// set up whose clock is known: the RTP and NTP time of now, and what was
// written so far. Players use them to line audio up with video and to
// date frames. A report that cannot go out at once (the reader is behind)
// is skipped: the next one follows in srPeriod.
func (t *directOut) sendReports(now time.Time) {
	for i := range t.wire.ssrc {
		if !t.wire.setUp(i) {
			continue
		}
		rtpTS, ntp, ok := t.st.SenderClock(i, now)
		if !ok {
			continue
		}
		sr := rtcp.SenderReport{SSRC: t.wire.ssrc[i], NTPTime: ntpTime(ntp), RTPTime: rtpTS,
			PacketCount: t.sent[i].packets.Load(), OctetCount: t.sent[i].octets.Load()}
		b, err := sr.Marshal()
		if err != nil {
			continue
		}
		if t.udp != nil {
			if t.rtcp != nil && t.rtcpAddrs[i].IsValid() {
				_ = t.rtcp.write(b, t.rtcpAddrs[i], t.timeout)
			}
			continue
		}
		ch := t.wire.rtcpChannel[i]
		t.control(append([]byte{'$', byte(ch), byte(len(b) >> 8), byte(len(b))}, b...))
	}
}

// control writes an interleaved RTCP frame between two access units: at
// once while the reader is written inline and keeps up, else after what
// is being written (every write on the connection is of whole frames),
// waiting at most the write timeout. It runs on the report timer's
// goroutine, never the stream's.
func (t *directOut) control(frame []byte) {
	if t.conn == nil {
		return
	}
	if t.conn.raw != nil {
		t.mu.Lock()
		if !t.busy {
			res, err := t.conn.tryWrite(frame, t.timeout)
			if err == nil && res == tryKept {
				t.handOver()
			}
			if err != nil || res != tryNotWritten {
				t.mu.Unlock()
				return
			}
		}
		t.mu.Unlock()
	}
	_ = t.conn.writeBatch(frame, t.timeout) // an error ends the reader's writer too
}

// ntpTime is t in the 64-bit NTP format of RTCP (seconds since 1900 and
// a binary fraction).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	sec := uint64(t.Unix()) + unixToNTP
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func (t *directOut) run() {
	defer t.drain()
	select {
	case <-t.start:
	case <-t.ctx.Done():
		return
	}
	// The first reports soon after PLAY (a player lines audio up with
	// video only once it has one per track), then every srPeriod.
	t.srTimer.Reset(srFirst)
	if t.inline() {
		t.runInline()
		return
	}
	var batch [outBatch]*streaming.Packet
	for {
		n, err := t.q.Pop(t.ctx, batch[:])
		if err != nil {
			return
		}
		if t.udp != nil {
			err = t.writeUDP(batch[:n])
		} else {
			err = t.writeTCP(batch[:n])
		}
		if err != nil {
			t.ss.Close()
			t.sc.Close()
			return
		}
	}
}

// runInline is the writer of a reader that deliver writes inline while
// it keeps up: it sends what the socket did not take and what was queued
// meanwhile, then hands the output back and waits to be kicked.
func (t *directOut) runInline() {
	var batch [outBatch]*streaming.Packet
	for {
		var err error
		if t.conn != nil {
			err = t.conn.flushKept(t.timeout)
		}
		if err == nil {
			if n := t.q.TryPop(batch[:]); n > 0 {
				if t.udp != nil {
					err = t.writeUDP(batch[:n])
				} else {
					err = t.writeTCP(batch[:n])
				}
				if err == nil {
					continue
				}
			}
		}
		if err != nil {
			t.ss.Close()
			t.sc.Close()
			return
		}
		t.mu.Lock()
		if t.q.Len() == 0 {
			t.busy = false
		}
		idle := !t.busy
		t.mu.Unlock()
		if !idle {
			continue
		}
		select {
		case <-t.kick:
		case <-t.ctx.Done():
			return
		}
	}
}

// writeTCP sends ps (releasing them) in writes of at most batchMax bytes.
func (t *directOut) writeTCP(ps []*streaming.Packet) error {
	bp := batchBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for i, p := range ps {
		if w := p.Marshalled(); len(w) >= 12 && err == nil {
			if len(buf) > 0 && len(buf)+4+len(w) > batchMax {
				err = t.conn.writeBatch(buf, t.timeout)
				buf = buf[:0]
			}
			buf = t.frame(buf, ps[i:i+1])
		}
		if err != nil {
			t.st.CountDropped(uint64(len(ps) - i))
			for _, q := range ps[i:] {
				q.Release()
			}
			break
		}
		t.count(ps[i : i+1])
		p.Release()
		ps[i] = nil
	}
	if err == nil && len(buf) > 0 {
		err = t.conn.writeBatch(buf, t.timeout)
	}
	*bp = buf
	putBatchBuf(bp)
	return err
}

// maxDatagram bounds what a UDP reader is sent; larger packets (which a
// camera on an Ethernet network does not produce) are dropped.
const maxDatagram = 1500

// writeUDP sends ps (releasing them), waiting for the socket. A datagram
// that cannot be sent is lost like on the network; only a closed socket
// ends the reader.
func (t *directOut) writeUDP(ps []*streaming.Packet) error {
	_, err := t.sendUDP(ps, true)
	for i, p := range ps {
		p.Release()
		ps[i] = nil
	}
	return err
}

// drain releases what is left in the queue once the writer ends.
func (t *directOut) drain() { t.q.Close() }

// udpSocket is the server's RTP socket, shared by gortsplib (which reads
// the clients' packets from it) and the UDP readers' writers.
type udpSocket struct {
	conn   *net.UDPConn
	raw    syscall.RawConn
	family int  // of the socket: AF_INET or AF_INET6 (Linux)
	gso    bool // it can send segmented messages (Linux 4.18)
	// deadline is the write deadline set on the socket (unix nanoseconds).
	// Writers share it: whoever finds less than its timeout left moves it
	// to 1.5 × timeout from now, so no writer sets it per packet and a
	// deadline gortsplib left behind cannot fail later writes.
	deadline atomic.Int64
}

func (u *udpSocket) write(b []byte, to netip.AddrPort, timeout time.Duration) error {
	if err := u.renew(timeout, false); err != nil {
		return err
	}
	_, err := u.conn.WriteToUDPAddrPort(b, to)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// gortsplib set a nearer deadline for a write of its own (a
		// reader it writes itself): renew and try once more.
		if err := u.renew(timeout, true); err != nil {
			return err
		}
		_, err = u.conn.WriteToUDPAddrPort(b, to)
	}
	return err
}

func (u *udpSocket) renew(timeout time.Duration, force bool) error {
	now := time.Now()
	d := u.deadline.Load()
	if !force && d >= now.Add(timeout).UnixNano() {
		return nil
	}
	next := now.Add(timeout * 3 / 2)
	if u.deadline.CompareAndSwap(d, next.UnixNano()) || force {
		return u.conn.SetWriteDeadline(next)
	}
	return nil
}

func newUDPSocket(c *net.UDPConn) *udpSocket {
	u := &udpSocket{conn: c, family: socketFamily(c)}
	u.raw, _ = c.SyscallConn()
	u.gso = udpGSO(u.raw)
	return u
}
