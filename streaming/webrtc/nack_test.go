package webrtc

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/streaming"
)

// TestNACKResent: a reader that reports a video packet lost (RTCP generic
// NACK) gets that packet again, byte for byte; one older than the
// retransmission history is not sent again.
func TestNACKResent(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: m, Lister: m})

	// The client sees the first copy too (a lost packet is simulated by a
	// NACK for one that arrived): SRTP replay protection would drop the
	// second as a replay.
	c := newClient(t, loopbackAPIWith(t, false, func(se *pwebrtc.SettingEngine) { se.DisableSRTPReplayProtection(true) }))
	var (
		mu    sync.Mutex
		seen  = map[uint16]int{}
		first = map[uint16]string{}
		order []uint16
		ssrc  uint32
		got   = make(chan struct{}, 1)
	)
	c.pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		if tr.Kind() != pwebrtc.RTPCodecTypeVideo {
			return
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			ssrc = uint32(tr.SSRC())
			seen[p.SequenceNumber]++
			if _, ok := first[p.SequenceNumber]; !ok {
				first[p.SequenceNumber] = string(p.Payload)
				order = append(order, p.SequenceNumber)
			} else if first[p.SequenceNumber] != string(p.Payload) {
				t.Errorf("packet %d sent again with other bytes", p.SequenceNumber)
			}
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(order)
	}
	waitFor(t, "nackHistory+50 video packets", 30*time.Second, func() bool { return received() >= nackHistory+50 })

	mu.Lock()
	recent, old, media := order[len(order)-10], order[len(order)-nackHistory-40], ssrc
	mu.Unlock()
	nack := &rtcp.TransportLayerNack{MediaSSRC: media, Nacks: []rtcp.NackPair{{PacketID: recent}, {PacketID: old}}}
	if err := c.pc.WriteRTCP([]rtcp.Packet{nack}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reported packet sent again", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[recent] == 2
	})
	// Anything resent goes out at once; by now the old one would have come.
	mu.Lock()
	defer mu.Unlock()
	if seen[old] != 1 {
		t.Fatalf("packet %d, older than the history of %d, was sent %d times", old, nackHistory, seen[old])
	}
}
