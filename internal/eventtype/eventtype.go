// Package eventtype owns the type strings of the events camgate sends on
// P/ID/events. streaming (which must not import uplink) and uplink (which
// must not import streaming) both take them from here, so each string is
// written once; uplink's Event* names are aliases of these.
//
// The package holds constants only: no logic, no imports.
package eventtype

// Agent lifecycle.
const (
	AgentStarted  = "agent.started"
	AgentStopping = "agent.stopping"
)

// Paths.
const (
	PathReady        = "path.ready"
	PathError        = "path.error"
	PathClosed       = "path.closed"
	PathStartTimeout = "path.start_timeout"
	// PublisherRefused: a second publisher was turned away because the
	// path already has one (not an authentication matter).
	PublisherRefused = "publisher.refused"
)

// Access refused by auth.users, reported per source address and interval
// with a count (streaming/auth aggregates them).
const (
	ReaderDenied    = "reader.denied"    // the read action (RTSP, WHEP)
	PublisherDenied = "publisher.denied" // the publish action (RTSP ANNOUNCE)
	APIDenied       = "api.denied"       // the api action (local API)
)

// Fleet side.
const (
	CmdRejected    = "cmd.rejected"
	OutboxDropped  = "outbox.dropped"
	StoreRecovered = "store.recovered"
)

// Updates (SPEC section 14).
const (
	UpdateProgress   = "update.progress"
	UpdateCommitted  = "update.committed"
	UpdateRolledBack = "update.rolled_back"
	// UpdateFailed: an update was refused before its trial (download,
	// size, hash, signature or self-test); the detail names the check.
	UpdateFailed = "update.failed"
)
