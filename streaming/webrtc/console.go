package webrtc

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// Box is what the operator's console shows of the box itself. The agent
// fills it; figures it could not read are zero or nil and left out.
type Box struct {
	Version string  `json:"version"`
	Uptime  float64 `json:"uptime"` // seconds since the agent started
	// CPUPercent is the busy share of all CPUs since the previous reading.
	CPUPercent   *float64 `json:"cpuPercent,omitempty"`
	MemTotal     uint64   `json:"memTotal,omitempty"`
	MemAvailable uint64   `json:"memAvailable,omitempty"`
	DiskFree     uint64   `json:"diskFree,omitempty"` // of the data directory's file system
	DiskTotal    uint64   `json:"diskTotal,omitempty"`
	TemperatureC *float64 `json:"temperatureC,omitempty"`
	// Uplink is nil when no broker is configured.
	Uplink *BoxUplink `json:"uplink,omitempty"`
	// Recordings, when recording is configured, is what the recorder
	// reports (sizes, oldest recording, ...); the console lists its
	// fields as given.
	Recordings any `json:"recordings,omitempty"`
}

// BoxUplink is the state of the MQTT uplink.
type BoxUplink struct {
	Connected bool `json:"connected"`
	// Broker is the broker's URL, credentials redacted.
	Broker      string `json:"broker"`
	OutboxDepth int    `json:"outboxDepth"` // messages waiting to be sent
	OutboxBytes int64  `json:"outboxBytes"`
	// LastSent is when the broker last acknowledged a message.
	LastSent time.Time `json:"lastSent,omitzero"`
}

// consoleStatus is the document of GET /~status.
type consoleStatus struct {
	Paths []pathStatus `json:"paths"`
	// Box is shown to a client that may read at least one path or use
	// the API (see serveStatus).
	Box *Box `json:"box,omitempty"`
}

type pathStatus struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Tracks    string `json:"tracks,omitempty"`
	Readers   int    `json:"readers"`
	Bitrate   int64  `json:"bitrate"` // bits/s received
	LastError string `json:"lastError,omitempty"`
}

// readablePaths lists the paths the request may read, and only those.
func (s *Server) readablePaths(r *http.Request) []streaming.PathInfo {
	var paths []streaming.PathInfo
	l := &listing{s: s, r: r}
	if s.o.Lister != nil {
		for _, p := range s.o.Lister.Paths() {
			if !strings.HasPrefix(p.Name, "~") && p.Name != streaming.CatchAll && l.mayRead(p.Name) {
				paths = append(paths, p)
			}
		}
	}
	return paths
}

// serveStatus answers GET /~status: the console's live figures, as JSON.
// It shows only the paths the client may read. The box's figures go to a
// client that may read at least one path, or use the API: the console is
// the view of whoever watches the cameras, and load, disk, temperature
// and whether the uplink is connected tell less than the video they may
// already watch; the broker's URL has its credentials redacted, and
// nothing that configures the box is shown. A client that may read
// nothing learns nothing, not even that the box has paths.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	st := consoleStatus{Paths: []pathStatus{}}
	for _, p := range s.readablePaths(r) {
		st.Paths = append(st.Paths, pathStatus{
			Name: p.Name, State: p.State.String(), Tracks: p.Tracks, Readers: p.Readers,
			Bitrate: int64(math.Round(p.BitrateIn)), LastError: p.LastError,
		})
	}
	if s.o.Box != nil && (len(st.Paths) > 0 || s.mayUseAPI(r)) {
		b := s.o.Box(r.Context())
		st.Box = &b
	}
	body, err := json.Marshal(st)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "status: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// mayUseAPI tells whether the request has the api permission.
func (s *Server) mayUseAPI(r *http.Request) bool {
	if s.o.Auth == nil {
		return true
	}
	ok, _ := s.o.Auth.Permits(r.Context(), auth.HTTPRequest(r, auth.ActionAPI, "", "whep"))
	return ok
}
