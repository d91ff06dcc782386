package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/uplink"
)

// Commands runs a command of the agent's table (ping, status, paths.add,
// ...) and returns its JSON result or a coded error.
type Commands interface {
	Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, *uplink.Error)
}

// Metrics returns the current metric families.
type Metrics interface {
	Metrics(ctx context.Context) []Family
}

// Options configure New.
type Options struct {
	// Address is host:port; required (the agent passes 127.0.0.1:9997 by default).
	Address  string
	Commands Commands
	Metrics  Metrics
	// Authorize, when set, decides every request (the "api" permission of
	// auth.users): nil lets it through, a Refusal answers it. A nil
	// Authorize allows everything.
	Authorize func(r *http.Request) *Refusal
	// Extra, when set, serves paths the API does not know (e.g. /debug/pprof/).
	// Its responses have no time limit (a CPU profile takes 30 s).
	Extra http.Handler
	// AllowedHosts are names the API answers to in the Host header besides
	// loopback names and addresses and the host of Address; any other Host
	// gets 403 (see origin.go). Default none.
	AllowedHosts []string
	// MaxConns and MaxConnsPerIP cap the open connections, in total (the
	// excess gets 503 at once) and from one client address (429); 0 = no
	// cap. The agent passes api.maxConnections and api.maxConnectionsPerIP.
	MaxConns, MaxConnsPerIP int
	// ReadHeaderTimeout bounds reading a request's header; default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an API response, counted from when the
	// handler starts; default 30s.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a request; default 30s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; default 16 KiB.
	MaxHeaderBytes int
	Logger         zerolog.Logger
}

// Refusal is how Authorize turns a request down.
type Refusal struct {
	// Status is 401 (sent with a Basic challenge), 403, 429 (too many
	// failed logins) or 503 (no password check could start in time).
	Status int
	// RetryAfter, when set, is sent as Retry-After in whole seconds.
	RetryAfter time.Duration
}

// Server is the local API.
type Server struct {
	opts     Options
	log      zerolog.Logger
	refusals zerolog.Logger // log of refused requests, sampled: an attack must not flood it
	hosts    hostPolicy
	http     *guard.HTTPServer
}

// maxBody bounds request bodies like MQTT command payloads.
const maxBody = uplink.MaxCommandBytes

// New binds the listener so a busy port fails the agent's start.
func New(opts Options) (*Server, error) {
	if opts.Address == "" {
		return nil, ErrNoAddress
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	// guard.ListenHTTP fills the other timeouts and MaxHeaderBytes.
	log := opts.Logger.With().Str("component", "api").Logger()
	s := &Server{opts: opts, log: log, refusals: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})}
	// The server has no WriteTimeout: it would cut a pprof profile; the
	// API's own routes set one per response.
	var err error
	s.http, err = guard.ListenHTTP(opts.Address, s.Handler(), guard.HTTPOptions{
		Listener:          guard.ListenerOptions{Name: "api", MaxConns: opts.MaxConns, MaxConnsPerIP: opts.MaxConnsPerIP, Log: opts.Logger},
		ReadHeaderTimeout: opts.ReadHeaderTimeout, ReadTimeout: opts.ReadTimeout, IdleTimeout: opts.IdleTimeout, MaxHeaderBytes: opts.MaxHeaderBytes,
		ShutdownTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", opts.Address, err)
	}
	s.hosts = newHostPolicy(s.Addr(), opts.AllowedHosts)
	if host, _, err := net.SplitHostPort(opts.Address); err == nil && host != "" && net.ParseIP(host) == nil {
		s.hosts.names[canonicalHost(host)] = true // a configured name, e.g. localhost
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.http.Addr().String() }

// ListenerStats are the listener's figures.
func (s *Server) ListenerStats() guard.Stats { return s.http.Stats() }

// Run serves until ctx ends, then shuts down within 2 s. It returns nil
// on a clean stop, an error when the listener went down.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info().Str("address", s.Addr()).Msg("local API listening")
	return s.http.Serve(ctx, nil)
}

// Close releases the listener of a server that never ran.
func (s *Server) Close() error { return s.http.Close() }

// Handler is the API's routing, exposed for tests. Requests a foreign
// page could have made are refused first (origin.go), then Authorize
// decides.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", s.health)
	mux.HandleFunc("GET /v1/config", s.command("config.get", nil))
	mux.HandleFunc("GET /v1/paths", s.command("paths.list", nil))
	mux.HandleFunc("GET /v1/paths/{name...}", s.getPath)
	mux.HandleFunc("POST /v1/paths/{name...}", s.postPath)
	mux.HandleFunc("DELETE /v1/paths/{name...}", s.deletePath)
	mux.HandleFunc("POST /v1/agent/update", s.postUpdate)
	mux.HandleFunc("GET /metrics", s.metrics)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		mux.ServeHTTP(w, r)
	})
	if s.opts.Extra != nil {
		api := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, pattern := mux.Handler(r); pattern != "" {
				api.ServeHTTP(w, r)
				return
			}
			// Long responses (a CPU profile): no write deadline.
			s.opts.Extra.ServeHTTP(w, r)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.sameSite(w, r) {
			return
		}
		if s.opts.Authorize != nil {
			if ref := s.opts.Authorize(r); ref != nil {
				s.refuse(w, ref)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// refuse answers a request Authorize turned down.
func (s *Server) refuse(w http.ResponseWriter, ref *Refusal) {
	if ref.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ref.RetryAfter+time.Second-1)/time.Second)))
	}
	switch ref.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="camgate"`)
		http.Error(w, "credentials required", http.StatusUnauthorized)
	case http.StatusTooManyRequests:
		http.Error(w, "too many failed logins from this address, retry later", http.StatusTooManyRequests)
	case http.StatusServiceUnavailable:
		http.Error(w, "busy checking logins, retry later", http.StatusServiceUnavailable)
	default:
		http.Error(w, "forbidden", http.StatusForbidden)
	}
}

// pathName returns the {name} of a path route, or answers 400 when it
// breaks the path-name rule (before anything is looked up).
func pathName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if err := guard.ValidatePathName(name); err != nil {
		writeError(w, &uplink.Error{Code: uplink.CodeBadRequest, Message: err.Error()})
		return "", false
	}
	return name, true
}

func (s *Server) command(name string, args json.RawMessage) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.call(w, r, name, args) }
}

func (s *Server) call(w http.ResponseWriter, r *http.Request, name string, args json.RawMessage) {
	res, cerr := s.opts.Commands.Call(r.Context(), name, args)
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(res)
	_, _ = w.Write([]byte("\n"))
}

// health serves the status document, with 503 when it says it is not ok
// (a listener is down), so service checks see the failure.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	res, cerr := s.opts.Commands.Call(r.Context(), "status", nil)
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	var doc struct {
		OK *bool `json:"ok"`
	}
	code := http.StatusOK
	if json.Unmarshal(res, &doc) == nil && doc.OK != nil && !*doc.OK {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(res)
	_, _ = w.Write([]byte("\n"))
}

// getPath returns one entry of paths.list.
func (s *Server) getPath(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	res, cerr := s.opts.Commands.Call(r.Context(), "paths.list", nil)
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	var list struct {
		Paths []json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(res, &list); err != nil {
		writeError(w, &uplink.Error{Code: uplink.CodeInternal, Message: "decode paths"})
		return
	}
	for _, p := range list.Paths {
		var n struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(p, &n) == nil && n.Name == name {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(p)
			_, _ = w.Write([]byte("\n"))
			return
		}
	}
	writeError(w, &uplink.Error{Code: uplink.CodeNotFound, Message: fmt.Sprintf("no path %q", name)})
}

// jsonBody reads a request's JSON body, at most maxBody bytes; false: it
// answered the request with the error.
func jsonBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, &uplink.Error{Code: uplink.CodeTooLarge, Message: fmt.Sprintf("body over %d bytes", maxBody)})
		return nil, false
	}
	if !json.Valid(body) {
		writeError(w, &uplink.Error{Code: uplink.CodeBadRequest, Message: "body is not JSON"})
		return nil, false
	}
	return body, true
}

// postPath adds or updates a fleet-managed path; the body is its conf.
func (s *Server) postPath(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	body, ok := jsonBody(w, r)
	if !ok {
		return
	}
	args, _ := json.Marshal(map[string]json.RawMessage{"name": mustJSON(name), "conf": body})
	res, cerr := s.opts.Commands.Call(r.Context(), "paths.update", args)
	if cerr != nil && cerr.Code == uplink.CodeNotFound {
		res, cerr = s.opts.Commands.Call(r.Context(), "paths.add", args)
		if cerr == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(res)
			return
		}
	}
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(res)
}

// postUpdate runs agent.update with the body as its args: 202 when the
// update was accepted (its progress and outcome are events and log lines),
// 200 for a no-op.
func (s *Server) postUpdate(w http.ResponseWriter, r *http.Request) {
	body, ok := jsonBody(w, r)
	if !ok {
		return
	}
	res, cerr := s.opts.Commands.Call(r.Context(), "agent.update", body)
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	var rep struct {
		Accepted bool `json:"accepted"`
	}
	_ = json.Unmarshal(res, &rep)
	w.Header().Set("Content-Type", "application/json")
	if rep.Accepted {
		w.WriteHeader(http.StatusAccepted)
	}
	_, _ = w.Write(res)
	_, _ = w.Write([]byte("\n"))
}

func (s *Server) deletePath(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	args, _ := json.Marshal(map[string]string{"name": name})
	if _, cerr := s.opts.Commands.Call(r.Context(), "paths.remove", args); cerr != nil {
		writeError(w, cerr)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var fams []Family
	if s.opts.Metrics != nil {
		fams = s.opts.Metrics.Metrics(r.Context())
	}
	if err := WriteText(w, fams); err != nil {
		s.log.Debug().Err(err).Msg("write metrics")
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// StatusOf maps an error code to its HTTP status.
func StatusOf(code uplink.ErrorCode) int {
	switch code {
	case uplink.CodeBadRequest:
		return http.StatusBadRequest
	case uplink.CodeNotFound:
		return http.StatusNotFound
	case uplink.CodeConflict:
		return http.StatusConflict
	case uplink.CodeReadOnly:
		return http.StatusForbidden
	case uplink.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case uplink.CodeUnknownCommand:
		return http.StatusNotImplemented
	case uplink.CodeExpired:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, e *uplink.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(StatusOf(e.Code))
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// IsLoopback tells whether addr (host:port) binds only loopback, for the
// agent's warning when the API is exposed.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
