package testcam

import (
	"context"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
)

// Publish publishes the camera's H.264 stream (fps frames a second, a
// keyframe every second) to url over TCP, as ffmpeg -f rtsp does, until
// ctx ends or the server drops it. Tests run it in a helper process as a
// path's runOnDemand or runOnInit command.
func Publish(ctx context.Context, url string, fps int) error {
	forma := &format.H264{PayloadTyp: 96, SPS: SPS, PPS: PPS, PacketizationMode: 1}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
	tr := gortsplib.TransportTCP
	c := &gortsplib.Client{Transport: &tr}
	if err := c.StartRecording(url, desc); err != nil {
		return err
	}
	defer c.Close()
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		return err
	}
	died := make(chan error, 1)
	go func() { died <- c.Wait() }()
	tick := time.NewTicker(time.Second / time.Duration(fps))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case err := <-died:
			return err
		case <-tick.C:
		}
		au := [][]byte{append([]byte{0x41}, make([]byte, 600)...)}
		if n%fps == 0 {
			au = [][]byte{SPS, PPS, append([]byte{0x65}, make([]byte, 2400)...)}
		}
		pkts, err := enc.Encode(au)
		if err != nil {
			return err
		}
		for _, p := range pkts {
			p.Timestamp = uint32(n * 90000 / fps)
			if err := c.WritePacketRTP(desc.Medias[0], p); err != nil {
				return err
			}
		}
	}
}
