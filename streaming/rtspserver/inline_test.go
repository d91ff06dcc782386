//go:build unix

package rtspserver

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestTryWriteKeepsOrder fills a connection nobody reads: tryWrite sends
// what the socket takes without waiting and keeps the rest, a gortsplib
// write made meanwhile (an RTSP response) goes out after the kept bytes,
// and further tryWrites write nothing until flushKept sent them.
func TestTryWriteKeepsOrder(t *testing.T) {
	srv, cli := tcpPair(t)
	bc := newBatchConn(srv)
	if bc.raw == nil {
		t.Fatal("no raw connection on a unix TCP socket")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: more than both socket buffers
	start := time.Now()
	res, err := bc.tryWrite(big, time.Second)
	if err != nil || res != tryKept {
		t.Fatalf("tryWrite of 16 MiB to a reader that reads nothing = %v, %v; want kept", res, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("tryWrite waited %v", d)
	}
	if res, _ := bc.tryWrite([]byte("late"), time.Second); res != tryNotWritten {
		t.Fatalf("tryWrite with bytes kept = %v, want nothing written", res)
	}
	response := []byte("RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n")
	wrote := make(chan error, 1)
	go func() {
		_, err := bc.Write(response)
		wrote <- err
	}()
	flushed := make(chan error, 1)
	go func() { flushed <- bc.flushKept(5 * time.Second) }()
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(big)+len(response))
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; err != nil {
		t.Fatalf("flushKept: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("response write: %v", err)
	}
	// The response went out either before tryWrite's first byte could be
	// read (impossible: it came later) or after every kept byte.
	if !bytes.Equal(got[:len(big)], big) || !bytes.Equal(got[len(big):], response) {
		t.Fatal("the response came between the written and the kept bytes")
	}
	res, err = bc.tryWrite([]byte("next"), time.Second)
	if err != nil || res != trySent {
		t.Fatalf("tryWrite after the flush = %v, %v; want sent", res, err)
	}
}

// TestKeptBytesOutliveAStaleDeadline: bytes tryWrite kept are sent by the
// next writeBatch with a fresh deadline, even when the deadline gortsplib
// last asked for (its PLAY response) passed long ago.
func TestKeptBytesOutliveAStaleDeadline(t *testing.T) {
	srv, cli := tcpPair(t)
	bc := newBatchConn(srv)
	// gortsplib's last write asked for a deadline that has passed.
	_ = bc.SetWriteDeadline(time.Now().Add(-time.Second))
	big := bytes.Repeat([]byte{'x'}, 16<<20)
	if res, err := bc.tryWrite(big, time.Second); err != nil || res != tryKept {
		t.Fatalf("tryWrite = %v, %v; want kept", res, err)
	}
	report := []byte("$\x01\x00\x04SR!!")
	done := make(chan error, 1)
	go func() { done <- bc.writeBatch(report, 5*time.Second) }()
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(big)+len(report))
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatalf("reading the kept bytes and the report: %v (writeBatch: %v)", err, <-done)
	}
	if err := <-done; err != nil {
		t.Fatalf("writeBatch after kept bytes: %v", err)
	}
	if !bytes.Equal(got[len(big):], report) {
		t.Fatal("the report did not follow the kept bytes")
	}
}
