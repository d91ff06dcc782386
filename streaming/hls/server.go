package hls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// Server is the LL-HLS server.
type Server struct {
	o    Options
	log  zerolog.Logger
	http *guard.HTTPServer

	mu     sync.Mutex
	ctx    context.Context // Run's; nil before Run
	muxers map[string]*muxer
	closed bool
	wg     sync.WaitGroup // muxer goroutines

	closeOnce sync.Once
}

// New binds the listener. Run serves; a Server that is never Run must be
// Closed.
func New(o Options) (*Server, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Logger.With().Str("component", "hls").Logger(), muxers: map[string]*muxer{}}
	// The server has no WriteTimeout: the first playlist of a muxer waits
	// for an on-demand source and its first segment. ServeHTTP sets a
	// write deadline per response instead.
	var err error
	s.http, err = guard.ListenHTTP(o.Address, s, guard.HTTPOptions{
		Listener:          guard.ListenerOptions{Name: "hls", MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Log: o.Logger},
		ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout, IdleTimeout: o.IdleTimeout, MaxHeaderBytes: o.MaxHeaderBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("listen hls %s: %w", o.Address, err)
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// ListenerStats are the listener's figures.
func (s *Server) ListenerStats() guard.Stats { return s.http.Stats() }

// Muxers is the number of paths being muxed now.
func (s *Server) Muxers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.muxers)
}

// Run serves until ctx ends, then closes every muxer and the listener and
// waits for every goroutine. It returns nil on a clean stop, an error when
// the listener went down.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.log.Info().Str("address", s.http.Addr().String()).Msg("hls server listening")
	// Stopping ends every muxer, which wakes the requests waiting on one.
	err := s.http.Serve(ctx, func() { cancel(); s.stopMuxers() })
	s.Close()
	return err
}

// Close stops every muxer and releases the listener; Run calls it.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stopMuxers()
		_ = s.http.Close()
	})
}

// stopMuxers refuses new muxers, stops the running ones and waits for them.
func (s *Server) stopMuxers() {
	s.mu.Lock()
	s.closed = true
	for _, m := range s.muxers {
		m.stop(ErrServerClosed)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// muxer returns the path's muxer, starting one when create is set.
func (s *Server) muxer(name string, create bool) (*muxer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ctx == nil {
		return nil, ErrServerClosed
	}
	if m := s.muxers[name]; m != nil {
		return m, nil
	}
	if !create {
		return nil, ErrNoMuxer
	}
	m := newMuxer(s, s.ctx, name)
	s.muxers[name] = m
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		m.run()
	}()
	return m, nil
}

func (s *Server) remove(m *muxer) {
	s.mu.Lock()
	if s.muxers[m.name] == m {
		delete(s.muxers, m.name)
	}
	s.mu.Unlock()
}

// ServeHTTP routes GET and HEAD /<path>/index.m3u8 (which starts the
// path's muxer) and /<path>/<file> for the files that playlist names;
// OPTIONS anywhere for CORS.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", s.o.AllowOrigin)
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "OPTIONS, GET, HEAD")
		h.Set("Access-Control-Allow-Headers", "Authorization, X-Requested-With")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 || i == len(p)-1 {
		httpError(w, http.StatusNotFound, "not found: hls is served at /<path>/index.m3u8")
		return
	}
	name, file := p[:i], p[i+1:]
	if err := guard.ValidatePathName(name); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.o.Auth != nil {
		if err := s.o.Auth.CheckContext(r.Context(), auth.HTTPRequest(r, auth.ActionRead, name, "hls")); err != nil {
			auth.WriteHTTPRefusal(w, r, err)
			return
		}
	}
	m, err := s.muxer(name, file == "index.m3u8")
	if err != nil {
		s.answerError(w, name, err)
		return
	}
	m.touch()
	select {
	case <-m.ready:
	case <-r.Context().Done():
		return
	}
	if m.err != nil {
		s.answerError(w, name, m.err)
		return
	}
	// The muxer may have waited for its source: the response gets a
	// deadline of its own.
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	m.serve(w, r)
}

// answerError maps why a path cannot be muxed to a status, as WHEP does.
func (s *Server) answerError(w http.ResponseWriter, name string, err error) {
	var uc *UnsupportedCodecsError
	switch {
	case errors.As(err, &uc):
		httpError(w, http.StatusNotAcceptable, err.Error())
	case errors.Is(err, streaming.ErrPathNotFound), errors.Is(err, streaming.ErrNoStream), errors.Is(err, ErrNoMuxer):
		httpError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, streaming.ErrTooManyReaders), errors.Is(err, streaming.ErrStartTimeout),
		errors.Is(err, streaming.ErrClosed), errors.Is(err, ErrServerClosed), errors.Is(err, context.Canceled):
		w.Header().Set("Retry-After", "2")
		httpError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Info().Err(err).Str("path", name).Msg("hls muxer failed")
		httpError(w, http.StatusInternalServerError, "hls: "+err.Error())
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
