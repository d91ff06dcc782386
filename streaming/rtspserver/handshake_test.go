package rtspserver

import (
	"net"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/guard"
)

// The guarded listener's connections keep what batchConn needs: the raw
// socket for inline writes, and the handshake deadline from accept.
func TestGuardedConnKeepsInlineWritesAndDeadline(t *testing.T) {
	l, err := guard.Listen("tcp", "127.0.0.1:0", guard.ListenerOptions{Name: "rtsp", Busy: guard.RTSPBusy})
	if err != nil {
		t.Fatal(err)
	}
	bl := batchListener{Listener: l, handshake: 100 * time.Millisecond}
	defer bl.Close()
	cli, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := bl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bc := c.(*batchConn)
	if inlineWrites && bc.raw == nil {
		t.Fatal("no raw socket behind the guarded connection: inline writes lost")
	}
	// What gortsplib's reader does first: clear the deadline. The
	// handshake deadline stays.
	if err := bc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = bc.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("deadline after %s", d)
	}
	// Released (playing): the zero deadline goes through.
	_ = bc.hs.release(bc.Conn)
	_ = bc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_ = bc.SetReadDeadline(time.Time{})
	go func() { time.Sleep(200 * time.Millisecond); _, _ = cli.Write([]byte("x")) }() // later than the cleared deadline
	if _, err := bc.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after release: %v", err)
	}
}
