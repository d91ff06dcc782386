package rtspserver

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// recConn records every Write reaching the socket.
type recConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	writes   [][]byte
	wrote    chan struct{}
	deadline int
	closed   bool
}

func newRecConn() *recConn { return &recConn{wrote: make(chan struct{}, 16)} }

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	select {
	case c.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *recConn) SetWriteDeadline(time.Time) error {
	c.mu.Lock()
	c.deadline++
	c.mu.Unlock()
	return nil
}

func (c *recConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *recConn) got() ([][]byte, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.deadline
}

// frame is an interleaved RTP frame on channel 0.
func frame(t *testing.T, seq uint16, marker bool, payload int) []byte {
	t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Marker: marker}, Payload: make([]byte, payload)}
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{'$', 0, byte(len(b) >> 8), byte(len(b))}, b...)
}

func TestHoldable(t *testing.T) {
	rtcp := []byte{'$', 1, 0, 12, 0x80, 200, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8}
	short := frame(t, 1, false, 10)
	short[3]-- // length field does not match: not one whole frame
	for _, c := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"rtp without marker", frame(t, 1, false, 100), true},
		{"rtp with marker", frame(t, 1, true, 100), false},
		{"rtcp sender report", rtcp, false},
		{"rtsp response", []byte("RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n"), false},
		{"partial frame", short, false},
		{"too short", []byte{'$', 0, 0, 2, 0x80, 96}, false},
	} {
		if got := holdable(c.p); got != c.want {
			t.Errorf("%s: holdable = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestBatchConnWritesAccessUnitOnce: the frames of an access unit reach
// the socket in one write, in order, when its marker packet comes; an RTSP
// response goes out at once after what was held; the write deadline is set
// once per socket write, not per frame.
func TestBatchConnWritesAccessUnitOnce(t *testing.T) {
	rc := newRecConn()
	bc := newBatchConn(rc)
	defer bc.Close()
	var want []byte
	for i := range 5 {
		f := frame(t, uint16(i), i == 4, 1000)
		want = append(want, f...)
		if err := bc.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if n, err := bc.Write(f); n != len(f) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		if w, _ := rc.got(); i < 4 && len(w) != 0 {
			t.Fatalf("frame %d written before the marker packet", i)
		}
	}
	w, deadlines := rc.got()
	if len(w) != 1 || !bytes.Equal(w[0], want) {
		t.Fatalf("%d writes, want the 5 frames in one", len(w))
	}
	if deadlines != 1 {
		t.Fatalf("write deadline set %d times for one write", deadlines)
	}

	held := frame(t, 5, false, 100)
	resp := []byte("RTSP/1.0 200 OK\r\nCSeq: 4\r\n\r\n")
	if _, err := bc.Write(held); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Write(resp); err != nil {
		t.Fatal(err)
	}
	w, _ = rc.got()
	if len(w) != 2 || !bytes.Equal(w[1], append(held, resp...)) {
		t.Fatalf("response not written at once after the held frame: %d writes", len(w))
	}
}

// TestBatchConnLargeAccessUnit: an access unit larger than batchMax goes
// out in pieces, every byte in order.
func TestBatchConnLargeAccessUnit(t *testing.T) {
	rc := newRecConn()
	bc := newBatchConn(rc)
	defer bc.Close()
	var want []byte
	n := 3*batchMax/1400 + 1
	for i := range n {
		f := frame(t, uint16(i), i == n-1, 1400)
		want = append(want, f...)
		if _, err := bc.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := rc.got()
	if len(w) < 3 || !bytes.Equal(bytes.Join(w, nil), want) {
		t.Fatalf("%d writes for %d bytes; joined equal: %v", len(w), len(want), bytes.Equal(bytes.Join(w, nil), want))
	}
	for i, p := range w {
		if len(p) > batchMax+1500 {
			t.Fatalf("write %d is %d bytes", i, len(p))
		}
	}
}

// TestBatchConnFlushesWithoutMarker: frames of a camera that never sets
// the marker bit still go out, after batchHold.
func TestBatchConnFlushesWithoutMarker(t *testing.T) {
	rc := newRecConn()
	bc := newBatchConn(rc)
	defer bc.Close()
	f := frame(t, 1, false, 100)
	start := time.Now()
	if _, err := bc.Write(f); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rc.wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("held frame never written")
	}
	if d := time.Since(start); d < batchHold {
		t.Fatalf("written after %v, before the hold time %v", d, batchHold)
	}
	if w, _ := rc.got(); len(w) != 1 || !bytes.Equal(w[0], f) {
		t.Fatalf("writes %d", len(w))
	}
}

// TestBatchConnCloseDropsHeld: after Close, held frames are not written and
// writes fail.
func TestBatchConnCloseDropsHeld(t *testing.T) {
	rc := newRecConn()
	bc := newBatchConn(rc)
	if _, err := bc.Write(frame(t, 1, false, 100)); err != nil {
		t.Fatal(err)
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Write(frame(t, 2, true, 100)); err == nil {
		t.Fatal("write after close succeeded")
	}
	if w, _ := rc.got(); len(w) != 0 || !rc.closed {
		t.Fatalf("writes after close: %d, socket closed: %v", len(w), rc.closed)
	}
}
