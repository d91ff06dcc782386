package record

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/streaming"
)

// ffmpegOut runs ffmpeg and returns the file it wrote; the test is
// skipped without ffmpeg.
func ffmpegOut(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	out := filepath.Join(t.TempDir(), name)
	if b, err := exec.Command("ffmpeg", append(append([]string{"-v", "error"}, args...), out)...).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot make %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// timed is one RTP packet of a track at a time of the stream.
type timed struct {
	at  time.Duration
	mi  int
	f   format.Format
	pkt *rtp.Packet
}

// H.265 with AAC and Opus, each made by ffmpeg (Opus: silence frames),
// recorded in 2 s segments: every segment and a /get across the boundary
// decode cleanly, with the three tracks.
func TestH265AACOpus(t *testing.T) {
	hevc := ffmpegOut(t, "v.hevc", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-pix_fmt", "yuv420p",
		"-c:v", "libx265", "-x265-params", "keyint=25:min-keyint=25:bframes=0:aud=1:repeat-headers=1:log-level=error", "-f", "hevc")
	adts := ffmpegOut(t, "a.aac", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:a", "aac", "-b:a", "64k", "-f", "adts")

	var nalus h264.AnnexB
	if err := nalus.Unmarshal(hevc); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	var vps, sps, pps []byte
	for _, n := range nalus {
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_AUD_NUT:
			aus = append(aus, nil)
			continue
		case h265.NALUType_VPS_NUT:
			vps = n
		case h265.NALUType_SPS_NUT:
			sps = n
		case h265.NALUType_PPS_NUT:
			pps = n
		}
		if len(aus) > 0 {
			aus[len(aus)-1] = append(aus[len(aus)-1], n)
		}
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(adts); err != nil {
		t.Fatal(err)
	}
	vf := &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}
	af := &format.MPEG4Audio{PayloadTyp: 97, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
		Config: &mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelCount: pkts[0].ChannelCount}}
	of := &format.Opus{PayloadTyp: 98, ChannelCount: 1}
	desc := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{vf}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{af}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{of}},
	}}
	var all []timed
	venc, _ := vf.CreateEncoder()
	for i, au := range aus {
		ps, err := venc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			p.Timestamp = uint32(i * 3600)
			all = append(all, timed{time.Duration(i) * 40 * time.Millisecond, 0, vf, p})
		}
	}
	aenc, _ := af.CreateEncoder()
	for i, p := range pkts {
		ps, err := aenc.Encode([][]byte{p.AU})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range ps {
			q.Timestamp = uint32(i * mpeg4audio.SamplesPerAccessUnit)
			all = append(all, timed{time.Duration(i*mpeg4audio.SamplesPerAccessUnit) * time.Second / time.Duration(p.SampleRate), 1, af, q})
		}
	}
	oenc, _ := of.CreateEncoder()
	for i := range 200 {
		p, err := oenc.Encode([]byte{0xf8, 0xff, 0xfe}) // 20 ms of silence
		if err != nil {
			t.Fatal(err)
		}
		p.Timestamp = uint32(i * 960)
		all = append(all, timed{time.Duration(i) * 20 * time.Millisecond, 2, of, p})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })

	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond}, nil)
	pub, err := h.m.Publish("cam", desc, streaming.ReaderRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the recorder to read", func() bool { return pub.Stream().Readers() == 1 })
	wall := time.Date(2026, 6, 7, 8, 9, 10, 0, time.UTC)
	for _, x := range all {
		pub.WriteRTP(desc.Medias[x.mi], x.f, x.pkt, wall.Add(x.at))
	}
	pub.Close()
	segs := h.closedSegments("cam")
	if len(segs) != 2 {
		dumpSegs(t, segs)
		t.Fatalf("%d segments, want 2", len(segs))
	}
	base := startPlayback(t, h, nil)
	files := []string{segs[0].file, segs[1].file, download(t, getURL(base, "cam", wall.Add(time.Second), 2*time.Second))}
	for i, file := range files {
		decodeClean(t, file)
		out := ffprobe(t, "-v", "error", "-show_entries", "stream=codec_name,duration", "-of", "csv=p=0", file)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "hevc,") || !strings.HasPrefix(lines[1], "aac,") || !strings.HasPrefix(lines[2], "opus,") {
			t.Errorf("file %d: streams %q, want hevc, aac, opus", i, lines)
		}
		format, _ := probeDuration(t, file)
		if !near(format, 2, 0.05) {
			t.Errorf("file %d: %.3f s, want 2", i, format)
		}
	}
}
