// Package webrtc serves camgate's paths to browsers and WHEP players over
// WebRTC: the WHEP endpoint (POST /<path>/whep, PATCH and DELETE on the
// session it creates, OPTIONS for CORS), the embedded player page
// (GET /<path>) and the path list (GET /).
//
// # What it owns
//
// The HTTP listener, the single ICE UDP port (and the optional ICE TCP port),
// one pion API built from one SettingEngine, and every peer connection with
// its reader queue and goroutines. Server.Run serves until its context ends
// and then closes every peer connection and waits for every goroutine.
//
// A WHEP session is a reader of a path: it acquires the path on POST (which
// starts an on-demand source), takes the stream's cached keyframe group and
// then live packets through its own bounded queue, and releases the path when
// the peer sends DELETE, when ICE fails, when the peer is gone for longer than
// the ICE failure timeout, or when the handshake does not finish in time.
//
// Media is passed through without transcoding: H.264 (parameter sets put
// back ahead of every IDR, packetization-mode 1), H.265 when the browser
// offers it, Opus, PCMU and PCMA. A path without a playable track, or whose
// H.264 uses B-frames, is refused with a 4xx naming the reason.
//
// # What it must not do
//
// It does not know how paths are configured or started: it consumes the small
// Paths, PathLister and Authenticator interfaces declared here, which the
// agent satisfies. It never logs credentials (the Authorization header is
// read, checked and dropped) and it announces only the addresses it is told
// to: interface addresses when enabled (virtual adapters skipped) and
// additionalHosts. mDNS candidates are never gathered.
package webrtc
