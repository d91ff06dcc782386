package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

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
	// auth.users); askCredentials makes a refusal a 401 Basic challenge
	// instead of a 403. nil allows everything.
	Authorize func(r *http.Request) (allowed, askCredentials bool)
	// Extra, when set, serves paths the API does not know (e.g. /debug/pprof/).
	Extra  http.Handler
	Logger zerolog.Logger
}

// Server is the local API.
type Server struct {
	opts Options
	log  zerolog.Logger
	ln   net.Listener
	srv  *http.Server
}

// maxBody bounds request bodies like MQTT command payloads.
const maxBody = uplink.MaxCommandBytes

// New binds the listener so a busy port fails the agent's start.
func New(opts Options) (*Server, error) {
	if opts.Address == "" {
		return nil, ErrNoAddress
	}
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", opts.Address, err)
	}
	s := &Server{opts: opts, log: opts.Logger.With().Str("component", "api").Logger(), ln: ln}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within 2 s.
func (s *Server) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.ln) }()
	s.log.Info().Str("address", s.Addr()).Msg("local API listening")
	select {
	case err := <-done:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// Close releases the listener of a server that never ran.
func (s *Server) Close() error { return s.ln.Close() }

// Handler is the API's routing, exposed for tests.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", s.command("status", nil))
	mux.HandleFunc("GET /v1/config", s.command("config.get", nil))
	mux.HandleFunc("GET /v1/paths", s.command("paths.list", nil))
	mux.HandleFunc("GET /v1/paths/{name...}", s.getPath)
	mux.HandleFunc("POST /v1/paths/{name...}", s.postPath)
	mux.HandleFunc("DELETE /v1/paths/{name...}", s.deletePath)
	mux.HandleFunc("POST /v1/agent/update", s.postUpdate)
	mux.HandleFunc("GET /metrics", s.metrics)
	if s.opts.Extra != nil {
		mux.Handle("/", s.opts.Extra)
	}
	if s.opts.Authorize == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed, ask := s.opts.Authorize(r)
		switch {
		case allowed:
			mux.ServeHTTP(w, r)
		case ask:
			w.Header().Set("WWW-Authenticate", `Basic realm="camgate"`)
			http.Error(w, "credentials required", http.StatusUnauthorized)
		default:
			http.Error(w, "forbidden", http.StatusForbidden)
		}
	})
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

// getPath returns one entry of paths.list.
func (s *Server) getPath(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
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

// postPath adds or updates a fleet-managed path; the body is its conf.
func (s *Server) postPath(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, &uplink.Error{Code: uplink.CodeTooLarge, Message: fmt.Sprintf("body over %d bytes", maxBody)})
		return
	}
	if !json.Valid(body) {
		writeError(w, &uplink.Error{Code: uplink.CodeBadRequest, Message: "body is not JSON"})
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, &uplink.Error{Code: uplink.CodeTooLarge, Message: fmt.Sprintf("body over %d bytes", maxBody)})
		return
	}
	if !json.Valid(body) {
		writeError(w, &uplink.Error{Code: uplink.CodeBadRequest, Message: "body is not JSON"})
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
	args, _ := json.Marshal(map[string]string{"name": r.PathValue("name")})
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
