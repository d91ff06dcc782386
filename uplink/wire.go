package uplink

import (
	"encoding/json"
	"time"

	"github.com/camgate/camgate/internal/eventtype"
)

// Status states and offline reasons (P/ID/status).
const (
	StateOnline     = "online"
	StateOffline    = "offline"
	ReasonLost      = "lost"
	ReasonShutdown  = "shutdown"
	MaxCommandBytes = 256 << 10 // larger command payloads are refused with too_large
)

// Status is the retained document on P/ID/status: the birth message on
// connect, the last will ({"state":"offline","reason":"lost"}) and the
// clean-stop message (reason "shutdown").
type Status struct {
	State     string     `json:"state"`
	Reason    string     `json:"reason,omitempty"`
	Version   string     `json:"version,omitempty"`
	BootID    string     `json:"bootId,omitempty"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	TS        *time.Time `json:"ts,omitempty"`
	// Labels are agent.labels with the desired state's labels applied;
	// fleet selectors (-l site=plant-3) match them.
	Labels map[string]string `json:"labels,omitempty"`
}

// Command is the payload of P/ID/cmd/NAME.
type Command struct {
	ID        string          `json:"id"`
	Args      json.RawMessage `json:"args,omitempty"`
	ExpiresAt *time.Time      `json:"expiresAt,omitempty"`
}

// ErrorCode is the code of a failed reply.
type ErrorCode string

// Error codes of SPEC section 7.
const (
	CodeBadRequest     ErrorCode = "bad_request"
	CodeUnknownCommand ErrorCode = "unknown_command"
	CodeNotFound       ErrorCode = "not_found"
	CodeConflict       ErrorCode = "conflict"
	CodeReadOnly       ErrorCode = "read_only"
	CodeExpired        ErrorCode = "expired"
	CodeTooLarge       ErrorCode = "too_large"
	CodeInternal       ErrorCode = "internal"
	// CodeBusy: the agent holds as many commands as it will; this one was
	// not run and not journaled as answered. Send it again (same id)
	// later: it runs then, or gets its journaled reply.
	CodeBusy ErrorCode = "busy"
)

// Error is the error member of a failed reply.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Reply is the payload of P/ID/reply/REQID.
type Reply struct {
	ID     string          `json:"id"`
	Cmd    string          `json:"cmd"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Event types: aliases of internal/eventtype, which owns the strings.
const (
	EventAgentStarted     = eventtype.AgentStarted
	EventAgentStopping    = eventtype.AgentStopping
	EventPathReady        = eventtype.PathReady
	EventPathError        = eventtype.PathError
	EventPathClosed       = eventtype.PathClosed
	EventReaderDenied     = eventtype.ReaderDenied
	EventPublisherDenied  = eventtype.PublisherDenied
	EventAPIDenied        = eventtype.APIDenied
	EventCmdRejected      = eventtype.CmdRejected
	EventOutboxDropped    = eventtype.OutboxDropped
	EventStoreRecovered   = eventtype.StoreRecovered
	EventUpdateProgress   = eventtype.UpdateProgress
	EventUpdateFailed     = eventtype.UpdateFailed
	EventUpdateCommitted  = eventtype.UpdateCommitted
	EventUpdateRolledBack = eventtype.UpdateRolledBack
)

// Event is one message on P/ID/events.
type Event struct {
	Seq    uint64    `json:"seq"`
	TS     time.Time `json:"ts"`
	Type   string    `json:"type"`
	Path   string    `json:"path,omitempty"`
	Detail any       `json:"detail,omitempty"` // a string or an object
}

// Health is one message on P/ID/health (and the result of "status").
type Health struct {
	Seq    uint64       `json:"seq"`
	TS     time.Time    `json:"ts"`
	Agent  AgentHealth  `json:"agent"`
	System SystemHealth `json:"system"`
	Paths  []PathHealth `json:"paths"`
	Uplink UplinkHealth `json:"uplink"`
	// OK is false while a listener the configuration asks for is not up:
	// the box does not serve what it should.
	OK        bool             `json:"ok"`
	Listeners []ListenerHealth `json:"listeners"`
}

// ListenerHealth is one TCP listener of the agent (rtsp, webrtc, api).
type ListenerHealth struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`           // up, down (failed: the agent exits), closed
	Error   string `json:"error,omitempty"` // why it is down
	// Connections open now; accept errors retried; connections refused
	// by the caps.
	Connections  int    `json:"connections"`
	AcceptErrors uint64 `json:"acceptErrors"`
	Refused      uint64 `json:"refused"`
}

// AgentHealth describes the agent process.
type AgentHealth struct {
	ID         string  `json:"id"`
	Version    string  `json:"version"`
	Uptime     float64 `json:"uptime"` // seconds
	BootCount  uint64  `json:"bootCount"`
	GoVersion  string  `json:"goVersion,omitempty"`
	Goroutines int     `json:"goroutines,omitempty"`
	HeapBytes  uint64  `json:"heapBytes,omitempty"`
}

// SystemHealth describes the box. Figures the platform cannot give are
// omitted.
type SystemHealth struct {
	CPUPercent   *float64    `json:"cpuPercent,omitempty"`
	MemTotal     uint64      `json:"memTotal,omitempty"`
	MemAvailable uint64      `json:"memAvailable,omitempty"`
	DiskFree     uint64      `json:"diskFree,omitempty"` // of the data directory
	TemperatureC *float64    `json:"temperatureC,omitempty"`
	Uptime       float64     `json:"uptime,omitempty"` // seconds since boot
	Interfaces   []Interface `json:"interfaces,omitempty"`
}

// Interface is one network interface of the box.
type Interface struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs,omitempty"`
	Up    bool     `json:"up"`
}

// PathHealth is one path's figures; Source is redacted.
type PathHealth struct {
	Name       string  `json:"name"`
	State      string  `json:"state"`
	Source     string  `json:"source"`
	OnDemand   bool    `json:"onDemand"`
	Readers    int     `json:"readers"`
	BytesIn    uint64  `json:"bytesIn"`
	BytesOut   uint64  `json:"bytesOut"`
	Bitrate    float64 `json:"bitrate"` // bits/s in, over the last interval
	Reconnects uint64  `json:"reconnects"`
	LastError  string  `json:"lastError,omitempty"`
	// Recording is set for a path that records or has recordings.
	Recording *RecordingHealth `json:"recording,omitempty"`
}

// RecordingHealth is a path's recording: its state and what is on disk.
type RecordingHealth struct {
	State     string     `json:"state"` // off, waiting (for a stream), recording
	Bytes     int64      `json:"bytes"`
	Segments  int        `json:"segments"`
	Oldest    *time.Time `json:"oldest,omitempty"` // start of the oldest segment
	LastError string     `json:"lastError,omitempty"`
}

// UplinkHealth are the uplink's own figures.
type UplinkHealth struct {
	Connected   bool   `json:"connected"`
	OutboxDepth int    `json:"outboxDepth"`
	OutboxBytes int64  `json:"outboxBytes"`
	Dropped     uint64 `json:"dropped"` // pushed out by the outbox bounds, since the state file was created
	// AppendFailed counts messages that could not be stored (disk full,
	// I/O error), since the state file was created. Each took a seq.
	AppendFailed uint64 `json:"appendFailed"`
	// EventsLost counts events dropped before the outbox because its
	// queue was full, since the agent started. They took no seq.
	EventsLost uint64 `json:"eventsLost"`
}

// OutboxDropped is the detail of an outbox.dropped event: what was lost
// since the previous one, exactly. At most one is raised per health
// interval, and never at the cost of a queued message. Dropped = Evicted +
// Failed is the number of seqs the fleet will never see.
type OutboxDropped struct {
	Dropped uint64 `json:"dropped"`
	// Evicted: the oldest messages, pushed out by the outbox bounds.
	Evicted uint64 `json:"evicted"`
	// Failed: messages that could not be stored; FirstFailedSeq and
	// LastFailedSeq bound their seqs, Reason is the last error.
	Failed         uint64 `json:"failed"`
	FirstFailedSeq uint64 `json:"firstFailedSeq,omitempty"`
	LastFailedSeq  uint64 `json:"lastFailedSeq,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// EventsLost: events dropped before the outbox (queue full), no seq.
	EventsLost uint64 `json:"eventsLost"`
	// Since is when the first of these losses happened.
	Since time.Time `json:"since"`
}
