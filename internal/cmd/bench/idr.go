package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// idrTimeout bounds one first-IDR measurement.
const idrTimeout = 15 * time.Second

// firstIDR connects to rawURL over RTSP/TCP and returns the time from
// opening the connection to the first complete H.264 access unit that
// holds an IDR, as a player that needs a keyframe would see it.
func firstIDR(ctx context.Context, rawURL string) (time.Duration, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return 0, err
	}
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	start := time.Now()
	if err := c.Start2(); err != nil {
		return 0, fmt.Errorf("connect %s: %w", rawURL, err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", rawURL, err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		return 0, fmt.Errorf("%s: no H.264 track", rawURL)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		return 0, err
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return 0, fmt.Errorf("setup %s: %w", rawURL, err)
	}
	got := make(chan time.Duration, 1)
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		au, err := dec.Decode(pkt)
		if err != nil {
			return // fragments, or packets before the first access unit start
		}
		if h264.IsRandomAccess(au) {
			select {
			case got <- time.Since(start):
			default:
			}
		}
	})
	if _, err := c.Play(nil); err != nil {
		return 0, fmt.Errorf("play %s: %w", rawURL, err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	timer := time.NewTimer(idrTimeout)
	defer timer.Stop()
	select {
	case d := <-got:
		return d, nil
	case err := <-waitErr:
		return 0, fmt.Errorf("%s: session ended before an IDR: %w", rawURL, err)
	case <-timer.C:
		return 0, fmt.Errorf("%s: no IDR within %v", rawURL, idrTimeout)
	case <-ctx.Done():
		return 0, errors.Join(ctx.Err(), fmt.Errorf("%s: interrupted", rawURL))
	}
}
