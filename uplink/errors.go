package uplink

import "errors"

var (
	// ErrNotConnected is returned by Reply and Publish while the client has
	// no broker connection.
	ErrNotConnected = errors.New("not connected to the broker")

	// ErrBadTopic is returned by New for a prefix or agent id that cannot
	// be used in a topic (see ValidateAgentID and ValidateTopicPrefix).
	ErrBadTopic = errors.New("unusable topic prefix or agent id")

	// ErrRunning is returned by a second call of Client.Run.
	ErrRunning = errors.New("uplink client already running")

	// ErrBadLabel is returned by ValidateLabel.
	ErrBadLabel = errors.New("unusable label")

	// ErrBadBroker is returned by New and CheckBroker for a broker URL with
	// an unsupported scheme, no host or a bad port.
	ErrBadBroker = errors.New("unsupported broker url")
)

// errRedeliver ends a session on purpose: commands were left
// unacknowledged with the broker and a new session has them resent.
var errRedeliver = errors.New("reconnect for redelivery")
