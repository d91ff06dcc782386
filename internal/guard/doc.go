// Package guard is the one place for the rules every network entry point
// of camgate shares: what a path name may look like, how a TCP
// listener survives a hostile LAN, and how failed logins are throttled.
//
// # Basics
//
// ValidatePathName is the path-name rule of the config file, the RTSP
// server, WHEP, the local API and the MQTT commands; each calls it before
// it looks a name up anywhere.
//
// Listener wraps the net.Listener of a server (RTSP, WHEP and the player
// page, LL-HLS, playback, the local API). Temporary accept errors (EMFILE,
// ENFILE, ECONNABORTED, ...) are retried with backoff, as net/http's Serve does,
// logged at most once per interval and counted. Connections beyond the
// caps, in total or from one source address, are answered at once with
// the protocol's "busy" reply and closed, and counted. Stats gives the
// figures for health and /metrics.
//
// HTTPServer is an http.Server on such a Listener with the budget every
// HTTP listener has (header and request read timeouts, idle timeout,
// header size) and one way to stop: the requests' contexts end, then the
// answers under way get a grace period before their connections are
// closed. A listener that goes down ends Serve with an error, which the
// owner's Run returns.
//
// Throttle slows down password guessing per source address: after a few
// failures an address is refused unchecked for a back-off that grows, and
// the table of addresses is bounded.
//
// # Caveats
//
// guard knows no protocol beyond the few bytes of a refusal and the
// timeouts of net/http's server: read deadlines that depend on the
// protocol's state (the RTSP server's "until a session exists") and write
// deadlines per answer stay with the server that knows the state.
// guard imports nothing of camgate but internal helpers, so every
// package may use it.
package guard
