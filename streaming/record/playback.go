package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming/auth"
)

// Authenticator checks a request; *auth.Authenticator satisfies it and
// reports refusals itself (one report per address and interval). Failed
// logins are throttled per address: auth.ErrThrottled means 429 and
// auth.ErrBusy 503, both with Retry-After; any other error 401.
type Authenticator interface {
	CheckContext(ctx context.Context, r auth.Request) error
}

// PlaybackOptions configure the playback server. Zero values take the
// stated defaults.
type PlaybackOptions struct {
	// Address is the HTTP listen address; default ":9996" (MediaMTX's).
	Address string
	// Recorder holds the recordings; required.
	Recorder *Recorder
	// Auth checks the playback permission; nil allows everybody.
	Auth Authenticator
	// AllowOrigin tells which web origins may read answers from a
	// browser (the player page's timeline); nil allows none.
	AllowOrigin func(origin string) bool

	// MaxConns and MaxConnsPerIP cap the open HTTP connections, in total
	// (the excess gets 503 at once) and from one client address (429).
	// 0 = no cap. The agent passes playback.maxConnections and
	// playback.maxConnectionsPerIP.
	MaxConns, MaxConnsPerIP int
	// ReadHeaderTimeout bounds reading a request's header; default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the write of an answer, and of each part of a
	// long /get answer, to a client that stopped reading; default 30s.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a request; default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; default 16 KiB.
	MaxHeaderBytes int
	// Log is the parent logger; the server adds component=playback.
	Log zerolog.Logger
}

// Playback serves GET /list and GET /get.
type Playback struct {
	o    PlaybackOptions
	log  zerolog.Logger
	http *guard.HTTPServer
}

// NewPlayback binds the listener; Run serves. A Playback never Run must
// be Closed.
func NewPlayback(o PlaybackOptions) (*Playback, error) {
	if o.Recorder == nil {
		return nil, errors.New("playback: Recorder is required")
	}
	if o.Address == "" {
		o.Address = ":9996"
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	// guard.ListenHTTP fills the other timeouts and MaxHeaderBytes.
	p := &Playback{o: o, log: o.Log.With().Str("component", "playback").Logger()}
	// The server has no WriteTimeout: a /get answer may be long. Each
	// answer, and each part of one, gets a write deadline instead.
	var err error
	p.http, err = guard.ListenHTTP(o.Address, p, guard.HTTPOptions{
		Listener:          guard.ListenerOptions{Name: "playback", MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Log: o.Log},
		ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout, IdleTimeout: o.IdleTimeout, MaxHeaderBytes: o.MaxHeaderBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("listen playback %s: %w", o.Address, err)
	}
	return p, nil
}

// Addr is the address the server listens on.
func (p *Playback) Addr() net.Addr { return p.http.Addr() }

// ListenerStats are the listener's figures.
func (p *Playback) ListenerStats() guard.Stats { return p.http.Stats() }

// Close releases the listener of a server that is not running.
func (p *Playback) Close() error { return p.http.Close() }

// Run serves until ctx ends; answers being written are cut off. It returns
// nil on a clean stop, an error when the listener went down.
func (p *Playback) Run(ctx context.Context) error {
	p.log.Info().Str("address", p.http.Addr().String()).Msg("playback server listening")
	return p.http.Serve(ctx, nil)
}

// ServeHTTP routes GET /list and GET /get (and CORS preflights).
func (p *Playback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A /get answer moves the deadline on with each part it writes.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(p.o.WriteTimeout))
	h := w.Header()
	if o := r.Header.Get("Origin"); o != "" && p.o.AllowOrigin != nil && p.o.AllowOrigin(o) {
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, X-Requested-With")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	switch r.URL.Path {
	case "/list":
		p.serveList(w, r)
	case "/get":
		p.serveGet(w, r)
	default:
		httpError(w, http.StatusNotFound, "not found: use /list?path=NAME or /get?path=NAME&start=RFC3339&duration=SECONDS")
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// authorize checks the path name, then the playback permission.
func (p *Playback) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.URL.Query().Get("path")
	if name == "" {
		httpError(w, http.StatusBadRequest, "path is required")
		return "", false
	}
	if err := guard.ValidatePathName(name); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	if p.o.Auth == nil {
		return name, true
	}
	if err := p.o.Auth.CheckContext(r.Context(), auth.HTTPRequest(r, auth.ActionPlayback, name, "playback")); err != nil {
		auth.WriteHTTPRefusal(w, r, err)
		return "", false
	}
	return name, true
}

// parseTime accepts RFC 3339, with the "+" of an offset that a query
// string turned into a space.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	}
	return t, err
}

// parseDuration accepts seconds (MediaMTX's form) or a Go duration.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f <= 0 || f > float64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("duration %q: want seconds, more than 0", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want seconds, more than 0", s)
	}
	return d, nil
}

// listEntry is one span as GET /list answers it (MediaMTX's shape).
type listEntry struct {
	Start    string  `json:"start"`
	Duration float64 `json:"duration"`
	URL      string  `json:"url"`
}

func (p *Playback) serveList(w http.ResponseWriter, r *http.Request) {
	name, ok := p.authorize(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var from, to time.Time
	var err error
	if s := q.Get("start"); s != "" {
		if from, err = parseTime(s); err != nil {
			httpError(w, http.StatusBadRequest, "start: want RFC 3339")
			return
		}
	}
	if s := q.Get("end"); s != "" {
		if to, err = parseTime(s); err != nil {
			httpError(w, http.StatusBadRequest, "end: want RFC 3339")
			return
		}
	}
	spans, err := p.o.Recorder.Spans(name)
	if err != nil {
		httpError(w, http.StatusNotFound, err.Error())
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	out := make([]listEntry, 0, len(spans))
	for _, s := range spans {
		end := s.Start.Add(s.Duration)
		if (!from.IsZero() && !end.After(from)) || (!to.IsZero() && !s.Start.Before(to)) {
			continue
		}
		start := s.Start.UTC().Format(time.RFC3339Nano)
		dur := strconv.FormatFloat(s.Duration.Seconds(), 'f', -1, 64)
		u := url.URL{Scheme: scheme, Host: r.Host, Path: "/get",
			RawQuery: url.Values{"path": {name}, "start": {start}, "duration": {dur}}.Encode()}
		out = append(out, listEntry{Start: start, Duration: s.Duration.Seconds(), URL: u.String()})
	}
	if len(out) == 0 {
		httpError(w, http.StatusNotFound, ErrNoRecordings.Error())
		return
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// mediaWriter sets the headers of an answer on its first byte, so that an
// error found before any can still be answered with a status.
type mediaWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	wrote   bool
}

func (m *mediaWriter) Write(b []byte) (int, error) {
	if !m.wrote {
		m.wrote = true
		h := m.w.Header()
		h.Set("Content-Type", "video/mp4")
		h.Set("Accept-Ranges", "none")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
	}
	_ = m.rc.SetWriteDeadline(time.Now().Add(m.timeout))
	return m.w.Write(b)
}

func (p *Playback) serveGet(w http.ResponseWriter, r *http.Request) {
	name, ok := p.authorize(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	start, err := parseTime(q.Get("start"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "start: want RFC 3339, e.g. 2026-01-02T15:04:05Z")
		return
	}
	dur, err := parseDuration(q.Get("duration"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if f := q.Get("format"); f != "" && f != "fmp4" {
		httpError(w, http.StatusBadRequest, "format: only fmp4 is served")
		return
	}
	plan, err := p.o.Recorder.plan(name, start, dur)
	if err != nil {
		httpError(w, http.StatusNotFound, err.Error())
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "video/mp4")
		return
	}
	began := time.Now()
	rc := http.NewResponseController(w)
	mw := &mediaWriter{w: w, rc: rc, timeout: p.o.WriteTimeout}
	err = p.o.Recorder.writeRange(plan, mw, func() { _ = rc.Flush() })
	switch {
	case err == nil:
		p.log.Debug().Str("path", name).Time("start", plan.from).Dur("duration", plan.to.Sub(plan.from)).
			Dur("took", time.Since(began)).Msg("playback served")
	case !mw.wrote && errors.Is(err, ErrNoRecordings):
		httpError(w, http.StatusNotFound, err.Error())
	case !mw.wrote:
		p.log.Warn().Err(err).Str("path", name).Msg("playback failed")
		httpError(w, http.StatusInternalServerError, "reading the recording failed")
	default:
		// Part of the answer is out: the client sees it end early.
		p.log.Info().Err(err).Str("path", name).Msg("playback ended early")
	}
}
