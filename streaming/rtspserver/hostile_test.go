package rtspserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/streaming/rtspserver"
)

// The tests below attack the RTSP server as a hostile LAN client would,
// with raw requests.

// rtspResponse reads one response and returns its status line and
// headers.
func rtspResponse(t *testing.T, r *bufio.Reader) (string, textproto.MIMEHeader) {
	t.Helper()
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("response header: %v", err)
	}
	return line, h
}

// TestHandshakeDeadline: a connection that does not play or record must
// complete each request within HandshakeTimeout, or it is closed; one
// that plays is left alone. It fails if gortsplib changes how it sets read
// deadlines (see handshake.go).
func TestHandshakeDeadline(t *testing.T) {
	cam := testcam.New(t)
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, func(o *rtspserver.Options) {
		o.HandshakeTimeout = 300 * time.Millisecond
	})
	base := runtime.NumGoroutine()
	cases := []struct {
		name string
		send func(t *testing.T, c net.Conn)
	}{
		{"idle", func(*testing.T, net.Conn) {}},
		{"half-sent request", func(_ *testing.T, c net.Conn) {
			_, _ = io.WriteString(c, "OPTIONS rtsp://"+r.addr+"/cam RTSP/1.0\r\nCSeq: 1\r\n")
		}},
		{"trickled request", func(_ *testing.T, c net.Conn) {
			req := "OPTIONS rtsp://" + r.addr + "/cam RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: " + strings.Repeat("x", 100) + "\r\n\r\n"
			go func() {
				for i := range len(req) {
					if _, err := c.Write([]byte{req[i]}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond) // the attack's pace
				}
			}()
		}},
		{"idle after a request", func(t *testing.T, c net.Conn) {
			_, _ = io.WriteString(c, "OPTIONS rtsp://"+r.addr+"/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n")
			if line, _ := rtspResponse(t, bufio.NewReader(c)); !strings.HasPrefix(line, "RTSP/1.0 200") {
				t.Fatalf("OPTIONS: %q", line)
			}
		}},
		{"idle after SETUP", func(t *testing.T, c net.Conn) {
			br := bufio.NewReader(c)
			_, _ = fmt.Fprintf(c, "DESCRIBE rtsp://%s/cam RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n", r.addr)
			line, h := rtspResponse(t, br)
			if !strings.HasPrefix(line, "RTSP/1.0 200") {
				t.Fatalf("DESCRIBE: %q", line)
			}
			var n int
			_, _ = fmt.Sscan(h.Get("Content-Length"), &n)
			sdp := make([]byte, n)
			_, _ = io.ReadFull(br, sdp)
			ctl := "trackID=0"
			for _, l := range strings.Split(string(sdp), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=control:"); ok && v != "*" {
					ctl = v
				}
			}
			if !strings.HasPrefix(ctl, "rtsp://") {
				ctl = "rtsp://" + r.addr + "/cam/" + ctl
			}
			_, _ = fmt.Fprintf(c, "SETUP %s RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n", ctl)
			if line, _ := rtspResponse(t, br); !strings.HasPrefix(line, "RTSP/1.0 200") {
				t.Fatalf("SETUP %s: %q", ctl, line)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testcam.DialFrom(t, "127.0.0.1", r.addr)
			tc.send(t, c)
			testcam.ReadUntilClosed(t, c, 5*time.Second)
		})
	}

	// Readers that play send nothing for far longer than the deadline
	// (TCP) or leave the connection idle (UDP): they keep being served.
	for _, udp := range []bool{false, true} {
		rd, err := testcam.Read(t, r.url("cam"), udp)
		if err != nil {
			t.Fatal(err)
		}
		rd.WaitPackets(t, 100, 10*time.Second) // 2 s of a 50 fps camera
		rd.Close()
	}
	waitFor(t, "connections let go", 5*time.Second, func() bool { return r.srv.ListenerStats().Open == 0 })
	testcam.Goroutines(t, base, 4, 10*time.Second)
}

// TestRTSPCaps: over the per-address cap a client gets 503 at once, while
// a reader from another address is served; over the total cap, 503 too.
func TestRTSPCaps(t *testing.T) {
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, nil,
		func(o *rtspserver.Options) { o.MaxConns, o.MaxConnsPerIP = 3, 2 })
	for range 2 {
		testcam.DialFrom(t, "127.0.0.1", r.addr) // idle, held
	}
	waitFor(t, "two held", 5*time.Second, func() bool { return r.srv.ListenerStats().Open == 2 })
	c := testcam.DialFrom(t, "127.0.0.1", r.addr)
	_, _ = io.WriteString(c, "OPTIONS rtsp://"+r.addr+"/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n")
	if got := testcam.ReadUntilClosed(t, c, 2*time.Second); !strings.HasPrefix(got, "RTSP/1.0 503 Service Unavailable\r\n") {
		t.Fatalf("over the per-address cap: %q", got)
	}
	if _, err := testcam.Read(t, r.url("demo"), false); err == nil {
		t.Fatal("a reader from the capped address was served")
	}
	rd, err := testcam.ReadFrom(t, r.url("demo"), "127.0.0.2")
	if err != nil {
		t.Fatalf("reader from another address: %v", err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	c = testcam.DialFrom(t, "127.0.0.3", r.addr)
	if got := testcam.ReadUntilClosed(t, c, 2*time.Second); !strings.HasPrefix(got, "RTSP/1.0 503 ") {
		t.Fatalf("over the total cap: %q", got)
	}
	st := r.srv.ListenerStats()
	if st.RefusedMaxConnsPerIP != 2 || st.RefusedMaxConns != 1 || st.Open != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRTSPBadPathNames: names outside the path-name rule get 400 before
// any lookup, even where the catch-all would accept any name.
func TestRTSPBadPathNames(t *testing.T) {
	r := startRelay(t, map[string]streaming.PathConfig{streaming.CatchAll: {Source: streaming.SourcePublisher}}, nil, nil)
	before := len(r.m.Paths())
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n"
	// 2 KB names: gortsplib itself closes the connection without an
	// answer (its request line limit); 1 KB ones reach the rule.
	for _, name := range []string{"../../etc/passwd", "a/../b", "nul%00byte", strings.Repeat("a", 1024), strings.Repeat("a", 2048), "sp%20ace", "x//y"} {
		for _, req := range []string{
			"DESCRIBE rtsp://%s/%s RTSP/1.0\r\nCSeq: 1\r\n\r\n",
			"ANNOUNCE rtsp://%s/%s RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: " + fmt.Sprint(len(sdp)) + "\r\n\r\n" + sdp,
			"SETUP rtsp://%s/%s/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
		} {
			c := testcam.DialFrom(t, "127.0.0.1", r.addr)
			_, _ = fmt.Fprintf(c, req, r.addr, name)
			got := testcam.ReadUntilClosed(t, c, 5*time.Second)
			method, _, _ := strings.Cut(req, " ")
			if !strings.HasPrefix(got, "RTSP/1.0 400 ") && (len(name) < 2048 || got != "") {
				t.Errorf("%s %.40s: %.80q", method, name, got)
			}
		}
	}
	if n := len(r.m.Paths()); n != before {
		t.Fatalf("bad names made paths: %d, was %d", n, before)
	}
	for _, ev := range r.ev.all {
		if ev.Type == "reader.denied" {
			t.Fatalf("a bad name reached authorization: %+v", ev)
		}
	}
}

// slowPaths answers Acquire only after a delay, like an on-demand camera
// that is slow to start.
type slowPaths struct {
	*streaming.Manager
	delay time.Duration
}

func (p slowPaths) Acquire(ctx context.Context, name string, req streaming.ReaderRequest) (*streaming.Lease, error) {
	t := time.NewTimer(p.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Manager.Acquire(ctx, name, req)
}

// TestSlowAnswersKeepTheConnection: the handshake deadline counts from
// each response, not from the request: a reader whose DESCRIBE and SETUP
// each take longer than it to answer still plays.
func TestSlowAnswersKeepTheConnection(t *testing.T) {
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: zerolog.Nop()},
		map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true, StartTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	az, _ := auth.New(anyReadLocalPublish, auth.Options{})
	addr := freeAddr(t, "tcp")
	srv := rtspserver.New(rtspserver.Options{Address: addr, HandshakeTimeout: 200 * time.Millisecond, Log: zerolog.Nop()},
		slowPaths{Manager: m, delay: 600 * time.Millisecond}, az)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rd, err := testcam.Read(t, "rtsp://"+addr+"/demo", false)
	if err != nil {
		t.Fatalf("slow answers lost the reader: %v", err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	rd.Close()
}

// TestClientGarbageIsCountedNotPrinted: a publisher whose stream has gaps
// and that sends undecodable RTP and RTCP keeps its session; the faults
// are counted exactly, logged as one structured warning (the first; the
// rest are summed into a line a minute), and nothing reaches Go's
// standard logger, where gortsplib prints one line per packet by default.
func TestClientGarbageIsCountedNotPrinted(t *testing.T) {
	var std testlog.Buffer
	prev := log.Writer()
	log.SetOutput(&std)
	t.Cleanup(func() { log.SetOutput(prev) })
	var logs testlog.Buffer
	r := startRelay(t, map[string]streaming.PathConfig{"pub": {Source: streaming.SourcePublisher}}, nil, func(o *rtspserver.Options) {
		o.Log = zerolog.New(&logs)
	})

	c := testcam.DialFrom(t, "127.0.0.1", r.addr)
	br := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	u := "rtsp://" + r.addr + "/pub"
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n"
	request := func(req string) textproto.MIMEHeader {
		t.Helper()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		for { // skip interleaved frames (receiver reports) before the answer
			b, err := br.Peek(1)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != '$' {
				break
			}
			var hdr [4]byte
			_, _ = io.ReadFull(br, hdr[:])
			_, _ = io.CopyN(io.Discard, br, int64(hdr[2])<<8|int64(hdr[3]))
		}
		line, h := rtspResponse(t, br)
		if !strings.Contains(line, " 200 ") {
			t.Fatalf("%.20q: %s", req, line)
		}
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		_, _ = io.CopyN(io.Discard, br, int64(n))
		return h
	}
	request(fmt.Sprintf("ANNOUNCE %s RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", u, len(sdp), sdp))
	h := request("SETUP " + u + "/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n")
	sess, _, _ := strings.Cut(h.Get("Session"), ";")
	request("RECORD " + u + " RTSP/1.0\r\nCSeq: 3\r\nSession: " + sess + "\r\n\r\n")

	frame := func(ch byte, b []byte) []byte {
		return append([]byte{'$', ch, byte(len(b) >> 8), byte(len(b))}, b...)
	}
	rtpPkt := func(seq uint16) []byte {
		b := []byte{0x80, 96, byte(seq >> 8), byte(seq), 0, 0, 0, byte(seq), 0, 0, 0, 1, 0x41, 1, 2, 3}
		return frame(0, b)
	}
	var out []byte
	for seq := uint16(1); seq <= 10; seq++ {
		out = append(out, rtpPkt(seq)...)
	}
	out = append(out, rtpPkt(20)...) // 11..19 lost
	const garbage = 500
	for range garbage {
		out = append(out, frame(0, []byte{0x80, 96, 0})...)      // an RTP header cut short
		out = append(out, frame(1, []byte{0xff, 0xff, 0, 9})...) // not RTCP
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	// The connection reads in order: the answer to this comes after every
	// frame above was handled, and says the session is still there.
	request("GET_PARAMETER " + u + " RTSP/1.0\r\nCSeq: 4\r\nSession: " + sess + "\r\n\r\n")

	if lost, bad := r.srv.Faults(); lost != 9 || bad != 2*garbage {
		t.Fatalf("counted %d lost and %d undecodable packets, want 9 and %d", lost, bad, 2*garbage)
	}
	var warnings []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "client streams damaged") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"from":"pub"`) || !strings.Contains(warnings[0], `"level":"warn"`) {
		t.Fatalf("fault lines in the log: %q", warnings)
	}
	if s := std.String(); s != "" {
		t.Fatalf("printed on the standard logger:\n%.500s", s)
	}
}
