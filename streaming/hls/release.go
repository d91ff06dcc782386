package hls

import (
	"time"

	"github.com/bluenviron/gohlslib/v2"
)

// closeMuxer closes a gohlslib muxer without stranding its clients.
//
// gohlslib v2.2.2 (and v2.2.3, the last release that fits gortsplib
// v4.16.2) has a bug in its EXT-X-PRELOAD-HINT handler: a request that
// waits for the next part and finds the muxer closed returns without
// unlocking the muxer's mutex, so every other request waiting on that
// muxer stays blocked for ever (goroutines and connections leaked each
// time a watched stream ends). An LL-HLS player nearly always has such a
// request waiting. So before Close, no new request is let in (the gate),
// and the waiting ones are released the way gohlslib releases them
// normally: by a new part. The muxer writes samples one behind (it needs
// the next one's timestamp for a sample's duration), so a copy of the
// latest keyframe unit, stamped far enough ahead, completes the current
// part and segment without itself ever being served, except when the
// muxer must be nudged more than once; then that copy of a keyframe is
// served, a frozen frame at the very end of the stream.
//
// TestCloseReleasesWaitingHints fails when gohlslib's behaviour changes
// under this (a leaked goroutine, or a close that waits its full bound).
type closer struct {
	hm      *gohlslib.Muxer
	lead    *track // the muxer's leading track: video if any, else audio
	inside  func() int32
	nudge   time.Duration // how far ahead of the latest unit a nudge is stamped
	timeout time.Duration // bound on waiting for the requests inside
}

func (c *closer) close() {
	deadline := time.Now().Add(c.timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 1; c.inside() > 0 && time.Now().Before(deadline); i++ {
		if i <= 3 && c.lead != nil && c.lead.key != nil {
			ahead := int64(i) * int64(c.nudge) * int64(c.lead.rate) / int64(time.Second)
			// Refusals are fine: all that matters is that a part ends.
			_ = c.lead.write(c.hm, time.Now(), c.lead.last+ahead, c.lead.key)
		}
		<-tick.C
	}
	c.hm.Close()
}
