// Package record writes paths to disk and plays the recordings back.
//
// A recorded path is read like any other: the recorder holds a lease on it
// (so an on-demand camera is pulled for as long as it records) and attaches
// a reader whose bounded queue feeds one writer goroutine per path. The
// writer depacketizes the RTP tracks it can store (H.264, H.265, AAC, Opus,
// G.711 and LPCM) and writes fragmented MP4 with mediacommon's fmp4
// package: one file per segment (recordSegmentDuration, cut at a video
// keyframe), an fMP4 fragment per part (recordPartDuration), each part one
// write followed by an fsync, so that a crash or a power loss leaves the
// segment playable up to its last complete part. A segment left unfinished
// is repaired (cut after its last complete part, its duration written) the
// next time the recorder starts.
//
// Retention deletes whole segments, the oldest first: those older than
// recordDeleteAfter, those over a path's recordMaxBytes, and, before any
// part is written, as many as it takes to keep recordMinFreeBytes free on
// the volume (shared by the paths recording under the same directory).
// A part that would still not fit is dropped, never written: recording does
// not fill the disk.
//
// Playback serves MediaMTX's API on a listener of its own: GET /list for
// the recorded spans of a path and GET /get for one fMP4 of a time range,
// stitched across segments, with the playback permission of auth.users.
// Its listener is guarded like camgate's others (internal/guard: caps,
// timeouts, the path-name rule) and failed logins are throttled per
// address by the authenticator, with the refusals of streaming/auth's HTTP
// rule (401, 429, 503).
//
// record must not know about MQTT, bbolt or the operating system: free
// space comes from a function it is given, events go to a
// streaming.EventSink.
package record
