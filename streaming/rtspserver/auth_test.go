package rtspserver_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/argon2"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/streaming/rtspserver"
)

// guess sends one DESCRIBE with Basic credentials on a connection of its
// own, as a password-guessing tool does (the server closes the connection
// after a refusal), and returns the status code and Retry-After.
func guess(t *testing.T, addr, path, user, pass string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if _, err := c.Write([]byte("DESCRIBE rtsp://" + addr + "/" + path + " RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic " + cred + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read status: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	retry := ""
	for {
		h, err := br.ReadString('\n')
		if err != nil || h == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(h, "Retry-After:"); ok {
			retry = strings.TrimSpace(v)
		}
	}
	return code, retry
}

// readFrom plays path as user from the local address src (another
// loopback address than the attacker's) and waits for packets.
func readFrom(t *testing.T, src, url string) error {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		return err
	}
	tr := gortsplib.TransportTCP
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tr, ReadTimeout: 5 * time.Second, DialContext: d.DialContext}
	if err := c.Start2(); err != nil {
		return err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return err
	}
	got := make(chan struct{}, 1)
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if _, err := c.Play(nil); err != nil {
		return err
	}
	select {
	case <-got:
		return nil
	case <-time.After(5 * time.Second):
		t.Fatal("no packet within 5 s")
		return nil
	}
}

// TestPasswordGuessingIsThrottledAndAggregated: 2 000 wrong RTSP guesses
// from 127.0.0.1 are checked a handful of times, then answered 503 with
// Retry-After unchecked; they make at most three reports (and log lines)
// whose counts add up to 2 000 exactly; a reader with the right password
// from 127.0.0.2 is served meanwhile.
func TestPasswordGuessingIsThrottledAndAggregated(t *testing.T) {
	if c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}); err != nil && strings.Contains(err.Error(), "assign") {
		t.Skip("127.0.0.2 is not a local address here")
	} else if c != nil {
		c.Close()
	}
	logs := &testlog.Buffer{}
	users := []auth.User{{Name: "viewer", Pass: "pw", Permissions: []auth.Permission{{Action: auth.ActionRead}}}}
	// A first back-off of a minute: however slowly a loaded machine runs
	// the guesses, the address stays throttled for the whole test.
	throttle := guard.NewThrottle(guard.ThrottleOptions{Backoff: time.Minute, MaxBackoff: time.Hour})
	r := startRelayAuth(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, users,
		auth.Options{ReportInterval: time.Hour, Log: zerolog.New(logs), Throttle: throttle}, nil)

	const guesses = 2000
	codes := map[int]int{}
	for i := 0; i < guesses; i++ {
		code, retry := guess(t, r.addr, "demo", "viewer", "guess"+strconv.Itoa(i))
		codes[code]++
		if code == 503 {
			if n, err := strconv.Atoi(retry); err != nil || n < 1 {
				t.Fatalf("guess %d: 503 with Retry-After %q", i, retry)
			}
		}
	}
	st := r.auth.Stats()
	t.Logf("answers %v; %d checked, %d throttled", codes, st.Denied, st.Throttled)
	if codes[401]+codes[503] != guesses {
		t.Fatalf("answers %v: want only 401 and 503", codes)
	}
	// 5 free failures, then nothing is checked any more.
	if codes[401] != 5 || st.Denied != uint64(codes[401]) || st.Throttled != uint64(codes[503]) {
		t.Fatalf("%d guesses checked (%d counted), %d throttled: want 5 checked", codes[401], st.Denied, st.Throttled)
	}

	if err := readFrom(t, "127.0.0.2", "rtsp://viewer:pw@"+r.addr+"/demo"); err != nil {
		t.Fatalf("legit reader from 127.0.0.2 while 127.0.0.1 is throttled: %v", err)
	}
	if code, _ := guess(t, r.addr, "demo", "viewer", "pw"); code != 503 {
		t.Fatalf("right password from the throttled address: %d, want 503 (refused unchecked)", code)
	}

	r.auth.Close() // reports what is still being counted
	total := 0
	reports := 0
	for _, d := range r.ev.deniedReports() {
		if d.IP != netip.MustParseAddr("127.0.0.1") || d.Kind != "reader.denied" || d.Path != "demo" {
			t.Fatalf("unexpected report %+v", d)
		}
		total += d.Count
		reports++
	}
	if total != guesses+1 || reports > 3 {
		t.Fatalf("%d reports counting %d refusals; want at most 3 counting %d", reports, total, guesses+1)
	}
	if n := strings.Count(logs.String(), "access denied"); n != reports {
		t.Fatalf("%d log lines for %d reports:\n%s", n, reports, logs.String())
	}
	if strings.Contains(logs.String(), "guess1") {
		t.Fatal("a password reached the log")
	}
}

// TestBusyVerificationGets503: when no argon2 slot frees up in time the
// reader gets 503 with Retry-After, not an endless wait.
func TestBusyVerificationGets503(t *testing.T) {
	salt := []byte("0123456789abcdef")
	sum := argon2.IDKey([]byte("pw"), salt, 1, 16<<10, 1, 32) // 16 MiB: tens of ms
	phc := fmt.Sprintf("argon2:$argon2id$v=19$m=%d,t=1,p=1$%s$%s", 16<<10,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
	users := []auth.User{{Name: "viewer", Pass: phc, Permissions: []auth.Permission{{Action: auth.ActionRead}}}}
	r := startRelayAuth(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, users,
		auth.Options{Argon2QueueTimeout: time.Millisecond, Argon2MaxWaiting: 1, Argon2MaxMemory: 1}, func(o *rtspserver.Options) { o.BasicOnly = true })
	// Keep the only slot taken with wrong guesses from ever new addresses.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold := make(chan struct{})
	go func() {
		defer close(hold)
		for i := 0; ctx.Err() == nil; i++ {
			ip := net.IPv4(10, 7, byte(i>>8), byte(i))
			_ = r.auth.CheckContext(ctx, auth.Request{Action: auth.ActionRead, Path: "demo", IP: ip, User: "viewer", Pass: "x"})
		}
	}()
	waitFor(t, "the holder hashing", 5*time.Second, func() bool { return r.auth.Stats().Argon2Verifications > 0 })
	saw := false
	for i := 0; i < 50 && !saw; i++ {
		busy := r.auth.Stats().Busy
		code, retry := guess(t, r.addr, "demo", "viewer", "wrong")
		saw = code == 503 && retry == "1" && r.auth.Stats().Busy > busy
	}
	cancel()
	<-hold
	if !saw {
		t.Fatal("no 503 with Retry-After: 1 while the only slot was taken")
	}
}
