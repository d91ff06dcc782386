package streaming

// State is a path's lifecycle state.
type State uint8

// Path states.
const (
	StateUnknown  State = iota
	StateIdle           // no source running (on-demand path nobody reads, or publisher path without publisher)
	StateStarting       // source connecting
	StateReady          // stream available
	StateError          // source failed; retrying (see LastError)
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateError:
		return "error"
	}
	return "unknown"
}

// MarshalText makes states readable in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Event is something that happened to a path, for telemetry.
type Event struct {
	Type   string // one of internal/eventtype: path.ready, path.error, path.closed, ...
	Path   string
	Detail string // credentials already redacted
}

// EventSink receives events. Implementations must not block.
type EventSink interface {
	Event(Event)
}

type nopSink struct{}

func (nopSink) Event(Event) {}
