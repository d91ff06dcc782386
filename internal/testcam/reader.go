package testcam

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// Reader is an RTSP client reading a stream and recording what arrives.
type Reader struct {
	Client *gortsplib.Client
	Desc   *description.Session

	mu       sync.Mutex
	packets  int
	nalTypes []byte // first NAL type of each packet (FU-A: the fragment's type)
	firstKey time.Time
	started  time.Time
	got      chan struct{}
	closed   chan struct{}
	err      error
}

// Read connects to url (TCP unless udp) and starts playing. The error is
// returned rather than fatal so tests can assert refusals.
func Read(t testing.TB, url string, udp bool) (*Reader, error) {
	t.Helper()
	return read(t, url, udp, nil)
}

// ReadFrom is Read over TCP from the loopback source address src (e.g.
// 127.0.0.2), a client of its own for per-address caps.
func ReadFrom(t testing.TB, url, src string) (*Reader, error) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return read(t, url, false, d.DialContext)
}

func read(t testing.TB, url string, udp bool, dial func(context.Context, string, string) (net.Conn, error)) (*Reader, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	tr := gortsplib.TransportTCP
	if udp {
		tr = gortsplib.TransportUDP
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tr, ReadTimeout: 5 * time.Second, DialContext: dial}
	if err := c.Start2(); err != nil {
		return nil, err
	}
	r := &Reader{Client: c, got: make(chan struct{}, 1), closed: make(chan struct{}), started: time.Now()}
	desc, _, err := c.Describe(u)
	if err != nil {
		c.Close()
		return nil, err
	}
	r.Desc = desc
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		c.Close()
		return nil, err
	}
	c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, p *rtp.Packet) {
		r.mu.Lock()
		r.packets++
		if len(p.Payload) > 0 {
			t := p.Payload[0] & 0x1f
			if t == 28 && len(p.Payload) > 1 {
				t = p.Payload[1] & 0x1f
			}
			if t == 24 && len(p.Payload) > 3 {
				t = p.Payload[3] & 0x1f
			}
			r.nalTypes = append(r.nalTypes, t)
			if (t == 5 || t == 7) && r.firstKey.IsZero() {
				r.firstKey = time.Now()
			}
		}
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default:
		}
	})
	if _, err := c.Play(nil); err != nil {
		c.Close()
		return nil, err
	}
	go func() {
		err := c.Wait()
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(r.closed)
	}()
	t.Cleanup(r.Close)
	return r, nil
}

// Close ends the reader.
func (r *Reader) Close() {
	r.Client.Close()
	<-r.closed
}

// Packets is the number of RTP packets received.
func (r *Reader) Packets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets
}

// NALTypes returns the first NAL type of each packet so far.
func (r *Reader) NALTypes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.nalTypes...)
}

// FirstKeyAfter is the time from Read's start to the first SPS or IDR.
func (r *Reader) FirstKeyAfter() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstKey.IsZero() {
		return 0, false
	}
	return r.firstKey.Sub(r.started), true
}

// WaitPackets waits until n packets arrived.
func (r *Reader) WaitPackets(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for r.Packets() < n {
		select {
		case <-r.got:
		case <-r.closed:
			t.Fatalf("reader closed after %d packets (want %d): %v", r.Packets(), n, r.err)
		case <-deadline.C:
			t.Fatalf("only %d packets after %s (want %d)", r.Packets(), timeout, n)
		}
	}
}

// Done is closed when the connection ended.
func (r *Reader) Done() <-chan struct{} { return r.closed }
