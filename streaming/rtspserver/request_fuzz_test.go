package rtspserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/streaming/rtspserver"
)

// rawServer is a relay for raw-bytes clients: an on-demand demo path, a
// locked path and publishing from loopback, over TCP and UDP.
type rawServer struct {
	addr string
}

func startRawServer(tb testing.TB) *rawServer {
	tb.Helper()
	log := zerolog.Nop()
	paths := map[string]streaming.PathConfig{
		"demo":   {Source: streaming.SourceDemo, SourceOnDemand: true, CloseAfter: 50 * time.Millisecond},
		"locked": {Source: streaming.SourceDemo, SourceOnDemand: true, CloseAfter: 50 * time.Millisecond},
		"pub":    {Source: streaming.SourcePublisher},
	}
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: log}, paths)
	if err != nil {
		tb.Fatal(err)
	}
	users := []auth.User{
		{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead, Path: "demo"}}},
		{Name: "viewer", Pass: "pw", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		{Name: "any", IPs: []string{"127.0.0.1/32"}, Permissions: []auth.Permission{{Action: auth.ActionPublish}}},
	}
	// No throttling: every input's credentials are checked, as the first
	// few from an address are.
	az, err := auth.New(users, auth.Options{Throttle: guard.NewThrottle(guard.ThrottleOptions{Failures: 1 << 30})})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(az.Close)
	addr := freeAddrTB(tb, "tcp")
	rtpA, rtcpA := freeUDPPairTB(tb)
	srv := rtspserver.New(rtspserver.Options{
		Address: addr, UDP: true, TCP: true, RTPAddress: rtpA, RTCPAddress: rtcpA,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, Log: log,
	}, m, az)
	if err := srv.Start(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
	})
	return &rawServer{addr: addr}
}

func freeAddrTB(tb testing.TB, network string) string {
	tb.Helper()
	l, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freeUDPPairTB(tb testing.TB) (string, string) {
	tb.Helper()
	if t, ok := tb.(*testing.T); ok {
		return freeUDPPair(t)
	}
	// testing.F: the same search, without t.
	for i := 0; i < 100; i++ {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port &^ 1
		a.Close()
		x, err1 := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", itoa(p)))
		y, err2 := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", itoa(p+1)))
		if x != nil {
			x.Close()
		}
		if y != nil {
			y.Close()
		}
		if err1 == nil && err2 == nil && p > 1024 {
			return net.JoinHostPort("127.0.0.1", itoa(p)), net.JoinHostPort("127.0.0.1", itoa(p+1))
		}
	}
	tb.Fatal("no free UDP port pair")
	return "", ""
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// send writes input on a new connection, closes the writing side and
// reads until the server closes. It returns the first line the server
// wrote ("" when it closed without a word). The server must close within
// 10 s of the half-close; a session set up over UDP outlives its
// connection (until the session timeout), every other goroutine the
// connection started must be gone within 5 s.
func (s *rawServer) send(t *testing.T, input []byte) string {
	t.Helper()
	others := goleak.IgnoreCurrent()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Write and read at once: a server that answers before reading all
	// the input must not deadlock us.
	werr := make(chan error, 1)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write(input)
		if cerr := c.(*net.TCPConn).CloseWrite(); err == nil {
			err = cerr
		}
		werr <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, _ := br.ReadString('\n')
	_, err = io.Copy(io.Discard, br)
	<-werr // the server may close before taking everything: not an error
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection neither answered nor closed within 10 s of the half-close (first line %q)", first)
	}
	c.Close()
	if !bytes.Contains(bytes.ToLower(input), []byte("client_port")) {
		if err := findLeaks(others, 5*time.Second); err != nil {
			t.Fatalf("after the connection closed: %v", err)
		}
	}
	return strings.TrimSpace(first)
}

// findLeaks waits up to d for every goroutine started since others was
// taken to end. The fuzzing worker's own signal watcher comes and goes.
func findLeaks(others goleak.Option, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find(others, goleak.IgnoreAnyFunction("os/signal.NotifyContext.func1"))
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

const (
	rawDemo = "rtsp://127.0.0.1:8554/demo"
	rawPub  = "rtsp://127.0.0.1:8554/pub"
	rawSDP  = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=control:trackID=0\r\na=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LACtkehAAAAwAEAAADAMg8SJkg,aM48gA==; profile-level-id=42C00A\r\n"
)

func req(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

func withBody(head, body string) string {
	return head + "\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
}

// rtspCases feed TestRawRequests and seed FuzzRTSPRequest: input and the
// status of the first response ("" for a close without an answer).
var rtspCases = []struct {
	name, input, status string
}{
	{"options", req("OPTIONS "+rawDemo+" RTSP/1.0", "CSeq: 1"), "RTSP/1.0 200 OK"},
	{"describe", req("DESCRIBE "+rawDemo+" RTSP/1.0", "CSeq: 1", "Accept: application/sdp"), "RTSP/1.0 200 OK"},
	{"describe unknown path", req("DESCRIBE rtsp://127.0.0.1:8554/nope RTSP/1.0", "CSeq: 1"), "RTSP/1.0 401 Unauthorized"}, // anonymous may read demo only,
	{"describe bad path", req("DESCRIBE rtsp://127.0.0.1:8554/../../etc RTSP/1.0", "CSeq: 1"), "RTSP/1.0 400 Bad Request"}, // the name rule comes before any lookup or credential check
	{"describe unknown path as viewer", req("DESCRIBE rtsp://127.0.0.1:8554/nope RTSP/1.0", "CSeq: 1", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("viewer:pw"))), "RTSP/1.0 404 Not Found"},
	{"describe locked", req("DESCRIBE rtsp://127.0.0.1:8554/locked RTSP/1.0", "CSeq: 1"), "RTSP/1.0 401 Unauthorized"},
	{"describe locked basic", req("DESCRIBE rtsp://127.0.0.1:8554/locked RTSP/1.0", "CSeq: 1", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("viewer:pw"))), "RTSP/1.0 200 OK"},
	{"describe locked bad basic", req("DESCRIBE rtsp://127.0.0.1:8554/locked RTSP/1.0", "CSeq: 1", "Authorization: Basic !!!"), "RTSP/1.0 401 Unauthorized"},
	{"describe locked digest", req("DESCRIBE rtsp://127.0.0.1:8554/locked RTSP/1.0", "CSeq: 1", `Authorization: Digest username="viewer", realm="x", nonce="1", uri="/locked", response="00"`), "RTSP/1.0 401 Unauthorized"},
	{"play tcp", req("SETUP "+rawDemo+"/trackID=0 RTSP/1.0", "CSeq: 1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1") +
		req("PLAY "+rawDemo+" RTSP/1.0", "CSeq: 2", "Session: 00000000"), "RTSP/1.0 200 OK"},
	{"setup tcp bad channels", req("SETUP "+rawDemo+"/trackID=0 RTSP/1.0", "CSeq: 1", "Transport: RTP/AVP/TCP;unicast;interleaved=a-b"), "RTSP/1.0 400 Bad Request"},
	{"setup udp", req("SETUP "+rawDemo+"/trackID=0 RTSP/1.0", "CSeq: 1", "Transport: RTP/AVP;unicast;client_port=40000-40001"), "RTSP/1.0 200 OK"},
	{"setup multicast", req("SETUP "+rawDemo+"/trackID=0 RTSP/1.0", "CSeq: 1", "Transport: RTP/AVP;multicast"), "RTSP/1.0 461 Unsupported Transport"},
	{"setup no transport", req("SETUP "+rawDemo+"/trackID=0 RTSP/1.0", "CSeq: 1"), "RTSP/1.0 400 Bad Request"},
	{"setup bad track", req("SETUP "+rawDemo+"/trackID=9 RTSP/1.0", "CSeq: 1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"), "RTSP/1.0 400 Bad Request"},
	{"play without setup", req("PLAY "+rawDemo+" RTSP/1.0", "CSeq: 1", "Session: 1234"), "RTSP/1.0 454 Session Not Found"},
	{"pause without session", req("PAUSE "+rawDemo+" RTSP/1.0", "CSeq: 1"), "RTSP/1.0 501 Not Implemented"},
	{"teardown", req("TEARDOWN "+rawDemo+" RTSP/1.0", "CSeq: 1", "Session: 1"), "RTSP/1.0 454 Session Not Found"},
	{"get parameter without session", req("GET_PARAMETER "+rawDemo+" RTSP/1.0", "CSeq: 1"), "RTSP/1.0 501 Not Implemented"},
	{"announce and record", withBody(strings.Join([]string{"ANNOUNCE " + rawPub + " RTSP/1.0", "CSeq: 1", "Content-Type: application/sdp"}, "\r\n"), rawSDP) +
		req("SETUP "+rawPub+"/trackID=0 RTSP/1.0", "CSeq: 2", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record") +
		req("RECORD "+rawPub+" RTSP/1.0", "CSeq: 3") +
		"$\x00\x00\x10\x80\x60\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x65\x88\x84\x00", "RTSP/1.0 200 OK"},
	{"announce bad sdp", withBody(strings.Join([]string{"ANNOUNCE " + rawPub + " RTSP/1.0", "CSeq: 1", "Content-Type: application/sdp"}, "\r\n"), "v=0\r\nm=video x"), "RTSP/1.0 400 Bad Request"},
	{"announce demo", withBody(strings.Join([]string{"ANNOUNCE " + rawDemo + " RTSP/1.0", "CSeq: 1", "Content-Type: application/sdp"}, "\r\n"), rawSDP), "RTSP/1.0 400 Bad Request"},
	{"interleaved first", "$\x00\x00\x04abcd", ""},
	{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	{"no cseq", req("OPTIONS " + rawDemo + " RTSP/1.0"), "RTSP/1.0 400 Bad Request"},
	{"huge content length", req("OPTIONS "+rawDemo+" RTSP/1.0", "CSeq: 1", "Content-Length: 99999999999"), ""},
	{"truncated", "DESCRIBE " + rawDemo + " RTSP/1.0\r\nCSeq: 1\r\n", ""},
	{"empty", "", ""},
}

func TestRawRequests(t *testing.T) {
	s := startRawServer(t)
	for _, c := range rtspCases {
		t.Run(c.name, func(t *testing.T) {
			got := s.send(t, []byte(c.input))
			if c.status == "" && got != "" && !strings.HasPrefix(got, "RTSP/1.0 4") {
				t.Fatalf("first line %q, want a close or a 4xx", got)
			}
			if c.status != "" && got != c.status {
				t.Fatalf("first line %q, want %q", got, c.status)
			}
		})
	}
}

// FuzzRTSPRequest writes arbitrary bytes to a real server over TCP: no
// panic, the connection is answered or closed, and no goroutine is left
// behind (see send). The answer, when there is one, is an RTSP response.
func FuzzRTSPRequest(f *testing.F) {
	for _, c := range rtspCases {
		f.Add([]byte(c.input))
	}
	s := startRawServer(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		got := s.send(t, input)
		if got != "" && !strings.HasPrefix(got, "RTSP/1.0 ") && !strings.HasPrefix(got, "$") {
			t.Fatalf("answer is not an RTSP response: %q", got)
		}
	})
}
