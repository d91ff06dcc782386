package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// whepReader is one WebRTC reader: a pion peer connection on loopback that
// receives the path's video, counts packets, bytes and sequence gaps, and
// decodes nothing (the cost measured is the agent's, not a player's).
type whepReader struct {
	pc      *webrtc.PeerConnection
	packets atomic.Uint64
	bytes   atomic.Uint64
	lost    atomic.Uint64
	first   chan struct{}
	once    sync.Once
	joined  time.Duration // POST to the first video packet
}

// whepAPI is a pion API for loopback readers that offer what a browser
// offers for H.264 (four profiles, packetization-mode 1) and Opus, with
// pion's default interceptors (NACK, RTCP reports), as a player has.
func whepAPI() (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	for i, plid := range []string{"42001f", "42e01f", "4d001f", "640032"} {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
				RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
			PayloadType: webrtc.PayloadType(102 + i),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	// Audio as browsers offer it: Opus and G.711 (MediaMTX sends a G.711
	// track of silence with a video-only stream, and refuses an offer
	// without it).
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

// startWHEP connects a reader to url (http://host:port/PATH/whep) and
// waits for its first video packet.
func startWHEP(ctx context.Context, api *webrtc.API, url string) (*whepReader, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	r := &whepReader{pc: pc, first: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = pc.Close()
		}
	}()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return nil, err
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
			}
		}
		var last uint16
		for n := 0; ; n++ {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if n > 0 {
				if gap := p.SequenceNumber - last - 1; gap != 0 && gap < 0x8000 {
					r.lost.Add(uint64(gap))
				}
			}
			last = p.SequenceNumber
			r.packets.Add(1)
			r.bytes.Add(uint64(len(p.Payload)))
			r.once.Do(func() { close(r.first) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewBufferString(pc.LocalDescription().SDP))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("WHEP POST %s: %s %s", url, res.Status, bytes.TrimSpace(answer))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return nil, err
	}
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-r.first:
		r.joined = time.Since(start)
	case <-t.C:
		return nil, fmt.Errorf("WHEP reader of %s: no video within 15 s", url)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ok = true
	return r, nil
}

func (r *whepReader) close() { _ = r.pc.Close() }

// whepResult is one "1 camera -> N WebRTC readers" window.
type whepResult struct {
	readers   int
	sample    result
	ppsPer    float64 // video packets per second per reader
	bytesPer  float64 // mean payload bytes per packet
	lost      uint64  // sequence gaps seen by all readers over the window
	joinMedia time.Duration
}

// webrtcReaders is the WebRTC fan-out: one camera, N pion readers.
func (b *bench) webrtcReaders(ctx context.Context) error {
	if len(b.o.whep) == 0 {
		return nil
	}
	cam, err := b.startCamera("camera-whep")
	if err != nil {
		return err
	}
	a, api, err := b.startAgent("whep", map[string]map[string]any{
		"cam": {"source": cam.URL, "rtspTransport": "tcp", "sourceOnDemand": false},
	})
	if err != nil {
		return err
	}
	papi, err := whepAPI()
	if err != nil {
		return err
	}
	if err := sleep(ctx, b.o.warmup); err != nil {
		return err
	}
	if b.report.whepBase, err = readRSS(a.PID()); err != nil {
		return err
	}
	var rs []*whepReader
	defer func() {
		for _, r := range rs {
			r.close()
		}
	}()
	url := b.webrtcBase + "/cam/whep"
	for _, n := range b.o.whep {
		var joins []time.Duration
		for len(rs) < n {
			r, err := startWHEP(ctx, papi, url)
			if err != nil {
				return err
			}
			rs = append(rs, r)
			joins = append(joins, r.joined)
		}
		if err := sleep(ctx, b.o.warmup); err != nil {
			return err
		}
		count := func() (p, by, l uint64) {
			for _, r := range rs {
				p += r.packets.Load()
				by += r.bytes.Load()
				l += r.lost.Load()
			}
			return
		}
		p0, b0, l0 := count()
		start := time.Now()
		s, err := sample(ctx, a.PID(), b.o.window, nil)
		if err != nil {
			return err
		}
		p1, b1, l1 := count()
		secs := time.Since(start).Seconds()
		res := whepResult{readers: n, sample: s, lost: l1 - l0}
		if p1 > p0 {
			res.ppsPer = float64(p1-p0) / secs / float64(n)
			res.bytesPer = float64(b1-b0) / float64(p1-p0)
		}
		slices.Sort(joins)
		res.joinMedia = joins[len(joins)/2]
		b.report.whep = append(b.report.whep, res)
		b.logf("1 camera -> %d WebRTC readers: %s; %.0f packets/s per reader of %.0f B, %d lost, first packet after %v (median of the new ones)",
			n, s, res.ppsPer, res.bytesPer, res.lost, res.joinMedia.Round(time.Millisecond))
		if b.o.pprof != "" && n == b.o.whep[len(b.o.whep)-1] {
			b.profile(ctx, api, a.Opts.Bin, a.PID(), fmt.Sprintf("%dwhep", n))
		}
	}
	return nil
}
