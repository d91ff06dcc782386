package webrtc

import (
	"net/http"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/streaming"
)

// TestVideoOnlyPathAnswersAudioInactive: a player offering audio and video
// to a path without audio gets an answer whose audio m-line sends nothing
// (a sendonly line makes go2rtc wait forever for a phantom track), and no
// audio track reaches it; video plays.
func TestVideoOnlyPathAnswersAudioInactive(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: m, Lister: m})

	c := newClient(t, loopbackAPI(t, false))
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	var answer sdp.SessionDescription
	if err := answer.UnmarshalString(c.body); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, md := range answer.MediaDescriptions {
		kind := md.MediaName.Media
		kinds[kind]++
		var dir string
		for _, a := range md.Attributes {
			switch a.Key {
			case "sendonly", "sendrecv", "recvonly", "inactive":
				dir = a.Key
			case "msid", "ssrc":
				if kind == "audio" {
					t.Errorf("audio m-line announces a stream: a=%s:%s", a.Key, a.Value)
				}
			}
		}
		switch kind {
		case "audio":
			if md.MediaName.Port.Value != 0 && dir != "inactive" && dir != "recvonly" {
				t.Errorf("audio m-line is %q on port %d, want inactive or rejected:\n%s", dir, md.MediaName.Port.Value, c.body)
			}
		case "video":
			if dir != "sendonly" {
				t.Errorf("video m-line is %q, want sendonly", dir)
			}
		}
	}
	if kinds["audio"] != 1 || kinds["video"] != 1 {
		t.Fatalf("answer has m-lines %v, want one audio and one video", kinds)
	}

	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatalf("no IDR within 10 s; NAL types so far %v", c.nalTypes())
	}
	waitFor(t, "50 video packets", 10*time.Second, func() bool { return c.video.Load() >= 50 })
	for _, tr := range c.pc.GetTransceivers() {
		if tr.Kind() == pwebrtc.RTPCodecTypeAudio && tr.Receiver() != nil && tr.Receiver().Track() != nil {
			t.Errorf("the player expects an audio track (ssrc %d)", tr.Receiver().Track().SSRC())
		}
	}
	if n := c.audio.Load(); n != 0 {
		t.Errorf("%d audio packets on a video-only path", n)
	}
}
