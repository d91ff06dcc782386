package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/camgate/camgate/agent/api"
	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/uplink"
)

// link is the agent's fleet side: events and health into the outbox, the
// MQTT uplink, the command dispatcher and the local API. The agent builds
// it in New (before the path manager, which takes its event sink) and runs
// it under its errgroup.
type link struct {
	a      *Agent
	log    zerolog.Logger
	events *eventSink
	outbox *outbox        // nil without a broker
	client *uplink.Client // nil without a broker
	health *healthSource
	disp   *dispatcher
	api    atomic.Pointer[api.Server] // set by Run when api.address is set
	// up is closed once Run has its listener (the local API) bound.
	up chan struct{}
}

// newLink prepares the fleet side; nothing connects or listens until Run.
func newLink(a *Agent) (*link, error) {
	cfg := a.cfg.Uplink
	l := &link{a: a, log: a.log, up: make(chan struct{})}
	enabled := cfg.Broker != ""
	l.events = newEventSink(a.log, enabled)
	if enabled {
		l.outbox = &outbox{st: a.store, log: a.log.With().Str("component", "outbox").Logger()}
		c, err := uplink.New(uplink.Options{
			Broker:      string(cfg.Broker),
			Username:    cfg.Username,
			Password:    string(cfg.Password),
			CAFile:      cfg.TLS.CA,
			CertFile:    cfg.TLS.Cert,
			KeyFile:     cfg.TLS.Key,
			TopicPrefix: cfg.TopicPrefix,
			AgentID:     a.id,
			Version:     Version,
			BootID:      a.bootID,
			StartedAt:   a.startedAt,
			Labels:      a.desired.labels(),
			Outbox:      l.outbox,
			Logger:      a.log,
		})
		if err != nil {
			return nil, fmt.Errorf("uplink %q: %w", redact.URL(string(cfg.Broker)), redact.Err(err))
		}
		l.client = c
	}
	if r := a.store.Recovered(); r != nil {
		l.log.Warn().Str("movedTo", r.MovedTo).Str("damage", r.Damage).Uint64("seq", r.Seq).
			Uint64("seqSkipped", r.SeqSkipped).Msg("state file was damaged")
		l.events.emit(uplink.EventStoreRecovered, "", r)
	}
	return l, nil
}

// Run runs the fleet side until ctx ends. The uplink is stopped last, after
// the agent.stopping event is in the outbox, so its flush carries it.
func (l *link) Run(ctx context.Context) error {
	a := l.a
	l.health = &healthSource{
		id: a.id, version: Version, started: a.startedAt, bootCount: a.store.BootCount(),
		paths: a.paths, system: &hal.Machine{DataDir: a.dataDir}, store: a.store, outbox: l.outbox, events: l.events,
		listeners: a.listenerStats, auth: a.auth, retime: a.desired.retime,
	}
	if a.webrtc != nil {
		l.health.pending = a.webrtc.PendingStats
		l.health.webrtcDropped = a.webrtc.SendDropped
	}
	if a.hls != nil {
		l.health.hlsMuxers = a.hls.Muxers
	}
	if a.rec != nil {
		l.health.records = a.rec
	}
	if l.client != nil {
		l.health.link = l.client
	}
	l.disp = newDispatcher(&dispatcher{
		log: a.log, store: a.store, paths: a.paths, cfg: a.cfg,
		health: l.health.snapshot, restart: a.requestRestart, events: l.events,
	})
	if a.update != nil {
		l.disp.update = a.update
	}
	if a.rec != nil {
		l.disp.rec = a.rec
	}

	var srv *api.Server
	if addr := a.cfg.API.Address; addr != "" {
		var err error
		c := a.cfg.API
		opts := api.Options{Address: addr, Commands: l.disp, Metrics: l.health, Authorize: l.authorizeAPI,
			AllowedHosts: c.AllowedHosts, MaxConns: c.MaxConnections, MaxConnsPerIP: c.MaxConnectionsPerIP, Logger: a.log}
		if a.cfg.Agent.Pprof {
			opts.Extra = pprofHandler()
		}
		srv, err = api.New(opts)
		if err != nil {
			return err
		}
		l.api.Store(srv)
		if !api.IsLoopback(addr) {
			l.log.Warn().Str("address", addr).Msg("local API listens beyond loopback")
		}
	}
	close(l.up)

	// Shutdown order: the workers stop with ctx; then agent.stopping is
	// queued and the event writer drains its queue into the outbox; then
	// the uplink flushes the outbox and publishes its offline status.
	uctx, ucancel := context.WithCancel(context.Background())
	defer ucancel()
	udone := make(chan error, 1)
	ectx, ecancel := context.WithCancel(context.Background())
	defer ecancel()
	edone := make(chan error, 1)
	if l.client != nil {
		go func() { udone <- l.client.Run(uctx) }()
		go func() { edone <- l.events.run(ectx, l.outbox) }()
	} else {
		udone <- nil
		edone <- nil
	}

	g, gctx := errgroup.WithContext(ctx)
	if srv != nil {
		g.Go(func() error { return srv.Run(gctx) })
	}
	if l.client != nil {
		g.Go(func() error { return l.health.runHealth(gctx, l.healthInterval()) })
		g.Go(func() error { return l.dispatch(gctx) })
		g.Go(func() error { return l.runDesired(gctx) })
	}
	<-gctx.Done()
	err := g.Wait()
	// Denials still being counted go out before the event writer stops.
	a.auth.Close()
	if ctx.Err() != nil {
		l.events.emit(uplink.EventAgentStopping, "", nil)
	}
	ecancel()
	<-edone
	ucancel()
	if uerr := <-udone; err == nil {
		err = uerr
	}
	return err
}

// pprofHandler serves /debug/pprof/ (agent.pprof, for profiling only) on
// a mux of its own: net/http/pprof's registration on the default mux is
// never served.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// authorizeAPI applies the "api" permission of auth.users to a request of
// the local API (credentials and client address as every HTTP listener
// reads them): missing or wrong credentials get a 401 challenge, a
// throttled address 429 and no room to check the password 503 (both with
// Retry-After), other refusals 403.
func (l *link) authorizeAPI(r *http.Request) *api.Refusal {
	err := l.a.auth.CheckContext(r.Context(), auth.HTTPRequest(r, auth.ActionAPI, "", "api"))
	retry := time.Duration(auth.RetryAfterSeconds(err)) * time.Second
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrCredentialsRequired), errors.Is(err, auth.ErrDenied):
		// Wrong credentials get a challenge too, so a client can ask again.
		return &api.Refusal{Status: http.StatusUnauthorized}
	case errors.Is(err, auth.ErrThrottled):
		return &api.Refusal{Status: http.StatusTooManyRequests, RetryAfter: retry}
	case errors.Is(err, auth.ErrBusy):
		return &api.Refusal{Status: http.StatusServiceUnavailable, RetryAfter: retry}
	}
	return &api.Refusal{Status: http.StatusForbidden}
}

func (l *link) healthInterval() time.Duration {
	if d := l.a.desired.healthInterval(); d > 0 {
		return d // set by the fleet's desired state
	}
	if d := l.a.cfg.Uplink.HealthInterval.D(); d > 0 {
		return d
	}
	return 30 * time.Second
}

// dispatch runs commands one at a time as the uplink hands them over, and
// answers the overflow busy on a goroutine of its own so that a burst is
// answered while the queue is worked off.
func (l *link) dispatch(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.runCommands(gctx) })
	g.Go(func() error { return l.answerBusy(gctx) })
	return g.Wait()
}

// runCommands runs each command and acknowledges it to the broker only
// once its reply is journaled and published. Until then the broker keeps
// it: after a crash or a lost connection it is sent again, and the journal
// answers it (the stored reply, or "interrupted" for one that was running)
// without running it twice.
func (l *link) runCommands(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-l.client.Commands():
			id, reply, after := l.disp.handleMQTT(ctx, in)
			l.replyAndAck(ctx, in, id, reply)
			if after != nil {
				after()
			}
		}
	}
}

// answerBusy answers commands the queue had no room for.
func (l *link) answerBusy(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-l.client.Busy():
			id, reply := l.disp.busyReply(in)
			l.replyAndAck(ctx, in, id, reply)
		}
	}
}

// replyAndAck publishes the reply of id ("" when the command had no usable
// id and was rejected with an event) and then acknowledges the command.
// A reply that cannot be sent is sent again once the broker is back: the
// broker would send an unacknowledged command again on the next session
// and get the journaled reply, but not every broker can be trusted with
// that (mochi forgets a message it sent when we publish with the same
// packet id), and the fleet should not wait for a retry of its own. So the
// next command waits meanwhile, which also holds the rest back at the
// broker. It gives up only when ctx ends (the agent stops): the command,
// unacknowledged, comes again on the next start.
func (l *link) replyAndAck(ctx context.Context, in uplink.Incoming, id string, reply []byte) {
	if id != "" {
		for attempt := 0; ; attempt++ {
			tried := time.Now()
			err := l.client.Reply(ctx, id, reply)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			ev := l.log.Debug()
			if attempt == 0 {
				ev = l.log.Warn()
			}
			ev.Str("id", id).Str("error", redact.Error(err)).Msg("reply not sent; sending it again once connected")
			if err := l.client.WaitConnected(ctx); err != nil {
				return
			}
			// Not more than once a second, should the broker refuse it.
			t := time.NewTimer(time.Until(tried.Add(time.Second)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	in.Ack()
}
