package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/sdp"

	"github.com/camgate/camgate/internal/interop"
)

// The swarm: many light RTSP readers in one process, for the cost curves
// where 200 ffmpeg processes would cost the machine more than the relay
// under test. Each reader does DESCRIBE, SETUP of the first video media
// over TCP and PLAY by hand, then reads interleaved frames and counts the
// access units it gets (RTP marker bits): nothing is decoded. The bench
// runs it as a child (its own binary with swarmEnv set); the child prints
// every reader's count twice a second.

// swarmEnv carries "READERS URL..." to the child; reader i reads URL
// i mod len(URLs).
const swarmEnv = "CAMGATE_BENCH_SWARM"

const swarmLine = "swarm"

// runSwarmChild is the child's main: it returns only on error or signal.
func runSwarmChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) < 2 {
		return fmt.Errorf("%s: want READERS URL..., got %q", swarmEnv, spec)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return fmt.Errorf("%s: bad reader count %q", swarmEnv, f[0])
	}
	urls := f[1:]
	counts := make([]atomic.Int64, n)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	for i := range counts {
		go func() {
			// Viewers on a LAN come from many hosts: 64 readers per
			// loopback source address keep each relay's per-address
			// limits (camgate's rtsp.maxConnectionsPerIP) out of the
			// curve.
			src := net.IPv4(127, 0, byte(1+i/64/250), byte(1+i/64%250))
			if err := swarmRead(ctx, src, urls[i%len(urls)], &counts[i]); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "reader %d: %v\n", i, err)
			}
		}()
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var sb strings.Builder
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		sb.Reset()
		sb.WriteString(swarmLine)
		for i := range counts {
			sb.WriteByte(' ')
			sb.WriteString(strconv.FormatInt(counts[i].Load(), 10))
		}
		fmt.Println(sb.String())
	}
}

// swarmRead plays the first video media of rawURL over TCP from the
// address src (nil: any) and counts its access units into aus until ctx
// ends or the connection fails.
func swarmRead(ctx context.Context, src net.IP, rawURL string, aus *atomic.Int64) error {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return err
	}
	var d net.Dialer
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	br := bufio.NewReaderSize(conn, 64<<10)
	cseq := 0
	session := ""
	do := func(m base.Method, target *base.URL, h base.Header) (*base.Response, error) {
		cseq++
		if h == nil {
			h = base.Header{}
		}
		h["CSeq"] = base.HeaderValue{strconv.Itoa(cseq)}
		if session != "" {
			h["Session"] = base.HeaderValue{session}
		}
		b, err := base.Request{Method: m, URL: target, Header: h}.Marshal()
		if err != nil {
			return nil, err
		}
		if _, err := conn.Write(b); err != nil {
			return nil, err
		}
		var res base.Response
		if err := res.Unmarshal(br); err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		if res.StatusCode != base.StatusOK {
			return nil, fmt.Errorf("%s: %d %s", m, res.StatusCode, res.StatusMessage)
		}
		return &res, nil
	}
	res, err := do(base.Describe, u, base.Header{"Accept": base.HeaderValue{"application/sdp"}})
	if err != nil {
		return err
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(res.Body); err != nil {
		return err
	}
	var desc description.Session
	if err := desc.Unmarshal(&sd); err != nil {
		return err
	}
	contentBase := u
	if cb, ok := res.Header["Content-Base"]; ok && len(cb) == 1 {
		if cbu, err := base.ParseURL(cb[0]); err == nil {
			contentBase = cbu
		}
	}
	var video *description.Media
	for _, m := range desc.Medias {
		if m.Type == description.MediaTypeVideo {
			video = m
			break
		}
	}
	if video == nil {
		return errors.New("no video media")
	}
	mu, err := video.URL(contentBase)
	if err != nil {
		return err
	}
	res, err = do(base.Setup, mu, base.Header{"Transport": base.HeaderValue{"RTP/AVP/TCP;unicast;interleaved=0-1"}})
	if err != nil {
		return err
	}
	if s, ok := res.Header["Session"]; ok && len(s) == 1 {
		session, _, _ = strings.Cut(s[0], ";")
	}
	if _, err := do(base.Play, contentBase, base.Header{"Range": base.HeaderValue{"npt=0-"}}); err != nil {
		return err
	}
	var hdr [4]byte
	buf := make([]byte, 65536)
	for {
		if _, err := io.ReadFull(br, hdr[:1]); err != nil {
			return err
		}
		if hdr[0] != '$' {
			// An RTSP message between frames: read it whole.
			if err := br.UnreadByte(); err != nil {
				return err
			}
			var res base.Response
			if err := res.Unmarshal(br); err != nil {
				return err
			}
			continue
		}
		if _, err := io.ReadFull(br, hdr[1:]); err != nil {
			return err
		}
		n := int(hdr[2])<<8 | int(hdr[3])
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return err
		}
		if hdr[1] == 0 && n >= 12 && buf[1]&0x80 != 0 {
			aus.Add(1)
		}
	}
}

// swarm is a running swarm child.
type swarm struct {
	*interop.Proc
	n int
}

// startSwarm starts n readers spread over urls.
func (b *bench) startSwarm(label string, n int, urls ...string) (*swarm, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), swarmEnv+"="+strconv.Itoa(n)+" "+strings.Join(urls, " "))
	p, err := interop.StartProcEnv(b.dir, label, env, self)
	if err != nil {
		return nil, err
	}
	b.track(p)
	return &swarm{Proc: p, n: n}, nil
}

// counts is every reader's access units so far (zeros before the first
// report).
func (s *swarm) counts() []int64 { return swarmCounts(s.Output(), s.n) }

// swarmCounts reads n counts from the last complete report in text.
func swarmCounts(text string, n int) []int64 {
	out := make([]int64, n)
	text = text[:max(strings.LastIndexByte(text, '\n'), 0)]
	i := strings.LastIndex(text, swarmLine+" ")
	if i < 0 {
		return out
	}
	line, _, _ := strings.Cut(text[i+len(swarmLine)+1:], "\n")
	for k, f := range strings.Fields(line) {
		if k < len(out) {
			out[k], _ = strconv.ParseInt(f, 10, 64)
		}
	}
	return out
}
