package guard

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"time"
)

// HTTPOptions configure ListenHTTP. Zero values take the stated defaults.
type HTTPOptions struct {
	// Listener configures the guarded listener: Name, caps, Log (the
	// parent logger). Busy defaults to HTTPBusy.
	Listener ListenerOptions
	// ReadHeaderTimeout bounds reading a request's header; default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request (header and body);
	// default 10s.
	ReadTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a request;
	// default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; default 16 KiB.
	MaxHeaderBytes int
	// ShutdownTimeout is how long Serve, once stopping, waits for answers
	// under way before it closes their connections; default 3s.
	ShutdownTimeout time.Duration
	// Watch is another listener of the same service (WebRTC's ICE-TCP
	// one): when it goes down, Serve ends with an error, as when the
	// HTTP listener itself does. nil: none.
	Watch *Listener
}

// HTTPServer is an HTTP server on a guarded Listener with the budget
// every camgate HTTP listener has (WHEP and the pages, LL-HLS, playback,
// the local API). It has no server-wide WriteTimeout: that counts from
// the request, and each of these servers has answers that may wait longer
// (an on-demand source, a profile, a long recording); handlers set a
// write deadline per answer instead.
type HTTPServer struct {
	o  HTTPOptions
	ln *Listener
	hs *http.Server
}

// ListenHTTP binds the listener, so that a busy port fails at once, and
// builds the server for h. Serve serves; a server never served must be
// Closed.
func ListenHTTP(address string, h http.Handler, o HTTPOptions) (*HTTPServer, error) {
	if o.Listener.Busy == nil {
		o.Listener.Busy = HTTPBusy
	}
	ln, err := Listen("tcp", address, o.Listener)
	if err != nil {
		return nil, err
	}
	return newHTTPServer(ln, h, o), nil
}

func newHTTPServer(ln *Listener, h http.Handler, o HTTPOptions) *HTTPServer {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 5 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 16 << 10
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 3 * time.Second
	}
	// net/http's own lines (a handler's panic, a bad TLS handshake) go to
	// the server's component log.
	errLog := o.Listener.Log.With().Str("component", o.Listener.Name).Str("from", "net/http").Logger()
	return &HTTPServer{o: o, ln: ln, hs: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          stdlog.New(errLog, "", 0),
	}}
}

// Addr is the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.ln.Addr() }

// Stats are the listener's figures.
func (s *HTTPServer) Stats() Stats { return s.ln.Stats() }

// Close releases the listener of a server that is not served; Serve
// closes it itself.
func (s *HTTPServer) Close() error { return s.ln.Close() }

// Serve serves until ctx ends or the listener (or Watch) goes down, then
// stops: the requests' contexts, which derive from ctx, end; stopping
// (when set) runs, to end what requests may wait on; answers still under
// way get ShutdownTimeout to finish before their connections are closed.
// It returns nil when ctx ended, else the error that ended serving: the
// owner's Run returns it and the agent exits for its service manager to
// restart it.
func (s *HTTPServer) Serve(ctx context.Context, stopping func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.hs.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- s.hs.Serve(s.ln) }()
	var watchDown <-chan struct{} // nil: never
	if s.o.Watch != nil {
		watchDown = s.o.Watch.Down()
	}
	var err error
	served := false
	select {
	case <-ctx.Done():
	case err = <-errc:
		served = true
		err = fmt.Errorf("serve %s: %w", s.o.Listener.Name, err)
	case <-watchDown:
		w := s.o.Watch
		err = fmt.Errorf("%s listener %s ended: %w", w.o.Name, w.Addr(), w.Err())
	}
	cancel()
	if stopping != nil {
		stopping()
	}
	shCtx, shCancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	if e := s.hs.Shutdown(shCtx); e != nil {
		_ = s.hs.Close()
	}
	shCancel()
	if !served {
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serve %s: %w", s.o.Listener.Name, e)
		}
	}
	_ = s.ln.Close()
	return err
}
