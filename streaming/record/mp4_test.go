package record

import (
	"bytes"
	"testing"
	"time"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/camgate/camgate/internal/testcam"
)

// The recorder writes the durations fmp4 (mediacommon v2.4.1) leaves at
// zero into the fields it finds in fmp4's own output: the movie's (mvhd,
// 1 ms) and each track's (mdhd). This fails loudly if fmp4 writes them
// otherwise (another version of the boxes, another movie timescale).
func TestDurationFields(t *testing.T) {
	b, durs, err := marshalInit([]*fmp4.InitTrack{
		{ID: 1, TimeScale: 90000, Codec: &mp4.CodecH264{SPS: testcam.SPS, PPS: testcam.PPS}},
		{ID: 2, TimeScale: 48000, Codec: &mp4.CodecMPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelCount: 2}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(durs.tracks) != 2 || durs.tracks[0].timescale != 90000 || durs.tracks[1].timescale != 48000 {
		t.Fatalf("duration fields %+v", durs)
	}
	if err := durs.write(sliceWriterAt(b), 12345678*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	var movie uint32
	var tracks []uint32
	_, err = amp4.ReadBoxStructure(bytes.NewReader(b), func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type.String() {
		case "moov", "trak", "mdia":
			return h.Expand()
		case "mvhd":
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			movie = box.(*amp4.Mvhd).DurationV0
		case "mdhd":
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tracks = append(tracks, box.(*amp4.Mdhd).DurationV0)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if movie != 12345 || len(tracks) != 2 || tracks[0] != 1111111 || tracks[1] != 592592 {
		t.Fatalf("movie %d ms, tracks %v; want 12345 ms, 1111111 and 592592 ticks", movie, tracks)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil || len(init.Tracks) != 2 {
		t.Fatalf("fmp4 reads the init back: %v", err)
	}
}
