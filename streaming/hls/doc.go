// Package hls serves camgate's paths as Low-Latency HLS for players that
// cannot do WebRTC (UDP blocked, smart TVs, NVR software, VLC, older
// iOS): GET /<path>/index.m3u8 on its own listener (hls.address, :8888
// by default, MediaMTX's port and URL shape), and the playlists, init
// files, segments and parts that playlist names.
//
// # What it owns
//
// The HTTP listener (through internal/guard: caps and timeouts) and one
// muxer per path being watched. A muxer is a reader like an RTSP session
// or a WHEP peer: the first request for a path's index.m3u8 acquires the
// path (starting an on-demand source), takes the stream's cached keyframe
// group (so the first segment is complete at the camera's next keyframe
// instead of the one after) and then live packets through its own bounded
// queue. It depacketizes H.264, H.265, MPEG-4 Audio (AAC) and Opus and
// hands access units to gohlslib's LL-HLS muxer (fMP4 parts of about
// 200 ms, segments of at least 1 s, 7 of them kept in memory). A muxer
// that no client has asked anything of for MuxerCloseAfter is closed and
// releases the path, so an on-demand source can close in turn. Server.Run
// serves until its context ends, then closes every muxer and waits for
// every goroutine.
//
// Requests are authorized as reads of the path, with the same users and
// the same answers as WHEP (401, or 429/503 with Retry-After when logins
// are throttled or argon2 is busy). CORS allows the player page, which is
// served from the WebRTC listener's port, to fetch from this one.
//
// # What it must not do
//
// It does not know how paths are configured or started: it consumes the
// small Paths and Authenticator interfaces declared here, which the agent
// satisfies. It never logs credentials. Tracks HLS cannot carry (MJPEG,
// G.711, MPEG-4 Part 2 video, ...) are left out; a path with none it can
// carry is answered 406 with the reason.
package hls
