package source

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"
)

// demoClip is 10 s of a moving test pattern with a counter, H.264
// constrained baseline 640x360 at 25 fps, one IDR per second, Annex-B.
// demo/gen.sh is the command that made it.
//
//go:embed demo/demo.h264
var demoClip []byte

const (
	demoFPS       = 25
	demoClockRate = 90000
	demoPT        = 96
)

// Demo plays the embedded clip in a loop with continuous timestamps, paced
// in real time. It needs no camera and no external program.
type Demo struct{}

// demoFrame is one access unit already split into RTP packets.
type demoFrame struct{ pkts []*rtp.Packet }

// Run implements Source.
func (Demo) Run(ctx context.Context, sink Sink) error {
	aus, err := splitAccessUnits(demoClip)
	if err != nil {
		return fmt.Errorf("demo clip: %w", err)
	}
	var sps, pps []byte
	for _, n := range aus[0] {
		switch n[0] & 0x1f {
		case 7:
			sps = n
		case 8:
			pps = n
		}
	}
	if sps == nil || pps == nil {
		return errors.New("demo clip: first access unit lacks SPS/PPS")
	}
	forma := &format.H264{PayloadTyp: demoPT, SPS: sps, PPS: pps, PacketizationMode: 1}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	desc := &description.Session{Title: "camgate demo", Medias: []*description.Media{medi}}

	enc := &rtph264.Encoder{PayloadType: demoPT, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		return fmt.Errorf("demo encoder: %w", err)
	}
	frames := make([]demoFrame, len(aus))
	for i, au := range aus {
		pkts, err := enc.Encode(au)
		if err != nil {
			return fmt.Errorf("demo encode: %w", err)
		}
		frames[i] = demoFrame{pkts: pkts}
	}
	if err := sink.Ready(desc); err != nil {
		return err
	}

	tick := time.NewTicker(time.Second / demoFPS)
	defer tick.Stop()
	var seq uint16
	start := time.Now()
	for n := 0; ; n++ {
		f := frames[n%len(frames)]
		ts := uint32(n * (demoClockRate / demoFPS))
		ntp := start.Add(time.Duration(n) * time.Second / demoFPS)
		for _, p := range f.pkts {
			p.Timestamp = ts
			p.SequenceNumber = seq
			seq++
			sink.WriteRTP(medi, forma, p, ntp)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// splitAccessUnits splits an Annex-B H.264 stream into access units,
// dropping access unit delimiters.
func splitAccessUnits(b []byte) ([][][]byte, error) {
	var nalus [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			break
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		var n []byte
		if j < 0 {
			n, b = b, nil
		} else {
			n, b = b[:j], b[j:]
		}
		n = bytes.TrimRight(n, "\x00")
		if len(n) > 0 {
			nalus = append(nalus, n)
		}
	}
	var aus [][][]byte
	var cur [][]byte
	hasVCL := false
	for _, n := range nalus {
		t := n[0] & 0x1f
		vcl := t == 1 || t == 5
		// A new access unit starts at a parameter set, a delimiter or the
		// first slice of a picture (first_mb_in_slice == 0) after a picture.
		firstSlice := vcl && len(n) > 1 && n[1]&0x80 != 0
		if hasVCL && (t == 7 || t == 8 || t == 9 || t == 6 || firstSlice) {
			aus = append(aus, cur)
			cur, hasVCL = nil, false
		}
		if t == 9 {
			continue
		}
		cur = append(cur, n)
		hasVCL = hasVCL || vcl
	}
	if hasVCL {
		aus = append(aus, cur)
	}
	if len(aus) == 0 {
		return nil, errors.New("no access units")
	}
	return aus, nil
}
