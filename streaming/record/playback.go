package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming/auth"
)

// Authenticator checks a request; *auth.Authenticator satisfies it.
type Authenticator interface {
	Check(r auth.Request) error
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
	// WriteTimeout bounds the write of each part of an answer to a client
	// that stopped reading; default 30 s.
	WriteTimeout time.Duration
	Log          zerolog.Logger
}

// Playback serves GET /list and GET /get.
type Playback struct {
	o   PlaybackOptions
	log zerolog.Logger
	ln  net.Listener
	hs  *http.Server
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
	p := &Playback{o: o, log: o.Log.With().Str("component", "playback").Logger()}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("listen playback %s: %w", o.Address, err)
	}
	p.ln = ln
	p.hs = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          stdlog.New(p.log.With().Str("from", "net/http").Logger(), "", 0),
	}
	return p, nil
}

// Addr is the address the server listens on.
func (p *Playback) Addr() net.Addr { return p.ln.Addr() }

// Close releases the listener of a server that is not running.
func (p *Playback) Close() error { return p.ln.Close() }

// Run serves until ctx ends; answers being written are cut off.
func (p *Playback) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.hs.BaseContext = func(net.Listener) context.Context { return ctx }
	p.log.Info().Str("address", p.ln.Addr().String()).Msg("playback server listening")
	errc := make(chan error, 1)
	go func() { errc <- p.hs.Serve(p.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve playback: %w", err)
	}
	cancel()
	shCtx, shCancel := context.WithTimeout(context.Background(), 2*time.Second)
	if e := p.hs.Shutdown(shCtx); e != nil {
		_ = p.hs.Close()
	}
	shCancel()
	if err == nil {
		<-errc
	}
	return err
}

// ServeHTTP routes GET /list and GET /get (and CORS preflights).
func (p *Playback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	if v := p.o.Recorder.o.ValidName; v != nil {
		if err := v(name); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return "", false
		}
	}
	if p.o.Auth == nil {
		return name, true
	}
	user, pass := auth.HTTPCredentials(r)
	var ip net.IP
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = net.ParseIP(host)
	}
	if err := p.o.Auth.Check(auth.Request{Action: auth.ActionPlayback, Path: name, IP: ip, User: user, Pass: pass}); err != nil {
		p.log.Info().Str("path", name).Str("user", user).Str("remote", r.RemoteAddr).Msg("playback denied")
		// A page asks for credentials itself; a Basic challenge would
		// make the browser pop its own dialog over it.
		if r.Header.Get("X-Requested-With") == "" {
			w.Header().Add("WWW-Authenticate", `Basic realm="camgate"`)
		}
		httpError(w, http.StatusUnauthorized, "authentication required")
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
