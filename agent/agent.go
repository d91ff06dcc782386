package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/eventtype"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/streaming/exec"
	"github.com/camgate/camgate/streaming/hls"
	"github.com/camgate/camgate/streaming/record"
	"github.com/camgate/camgate/streaming/rtspserver"
	"github.com/camgate/camgate/streaming/webrtc"
)

// Options are what the CLI hands the agent besides the configuration.
type Options struct {
	// ConfigFile is the file the config came from ("" for the embedded defaults).
	ConfigFile string
	// AsService is true under a service manager: system data directory.
	AsService bool
	// Trial, when set, makes this agent a candidate on trial: it reports
	// healthy over it and stops when the supervising agent says so.
	Trial *update.TrialLink
}

// Agent is one running camgate.
type Agent struct {
	cfg       *conf.Config
	opts      Options
	log       zerolog.Logger
	id        string
	bootID    string
	startedAt time.Time
	dataDir   string

	store  *store.Store
	events streaming.EventSink
	auth   *auth.Authenticator
	paths  *streaming.Manager
	rtsp   *rtspserver.Server
	webrtc *webrtc.Server // nil when webrtc.address is empty
	hls    *hls.Server    // nil when hls.address is empty
	box    *boxStatus     // the console's figures of the box
	rec    *record.Recorder
	replay *record.Playback // nil when playback.address is empty
	link   *link            // fleet side: events, uplink, commands, local API
	update *update.Updater

	// desired is the fleet's desired state as applied (labels, settings).
	desired *desiredState

	// trialCand is set when an update's candidate waits for its trial:
	// Run then returns errUpdateTrial.
	trialCand atomic.Pointer[update.Binary]

	// restart is closed when a command asked the agent to restart;
	// restartOnce closes it once, however many ask at the same moment
	// (the local API and MQTT each run agent.restart on their own
	// goroutine).
	restart     chan struct{}
	restartOnce sync.Once
	// ready is closed once every listener is up.
	ready chan struct{}
}

// New builds every part. Nothing listens until Run.
func New(cfg *conf.Config, opts Options, log zerolog.Logger) (a *Agent, err error) {
	a = &Agent{cfg: cfg, opts: opts, log: log, startedAt: time.Now(), restart: make(chan struct{}), ready: make(chan struct{})}
	var b [8]byte
	_, _ = rand.Read(b[:])
	a.bootID = hex.EncodeToString(b[:])

	a.dataDir = cfg.Agent.DataDir
	if a.dataDir == "" {
		a.dataDir = hal.DefaultDataDir(opts.AsService)
	}
	st, err := store.Open(filepath.Join(a.dataDir, "camgate.db"), store.Options{
		OutboxMaxMessages: cfg.Uplink.Outbox.MaxMessages,
		OutboxMaxBytes:    int64(cfg.Uplink.Outbox.MaxBytes),
	})
	if err != nil {
		return nil, err
	}
	a.store = st
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()

	a.id = cfg.Agent.ID
	if a.id == "" {
		a.id, err = st.AgentID(func() (string, error) {
			if id, err := hal.AgentIDFromMachine(); err == nil {
				return id, nil
			}
			var r [16]byte
			if _, err := rand.Read(r[:]); err != nil {
				return "", fmt.Errorf("random agent id: %w", err)
			}
			return hal.IDFromSeed(hex.EncodeToString(r[:])), nil
		})
		if err != nil {
			return nil, fmt.Errorf("agent id: %w", err)
		}
	}
	a.log = a.log.With().Str("agent", a.id).Logger()
	if a.desired, err = newDesiredState(cfg, st, a.log); err != nil {
		return nil, err
	}
	if a.link, err = newLink(a); err != nil {
		return nil, err
	}
	a.events = a.link.events
	if a.update, err = a.newUpdater(); err != nil {
		return nil, err
	}

	a.auth, err = auth.New(authUsers(cfg.Auth.Users), auth.Options{
		Argon2MaxMemory:    int64(cfg.Auth.Argon2MaxMemory),
		Argon2QueueTimeout: cfg.Auth.Argon2QueueTimeout.D(),
		// One event, logged by the event sink, per report.
		Denials: a.link.events,
		// argon2 buffers are tens of MiB: hand them back once the
		// checks stop rather than when the runtime gets to it.
		ReturnMemory: debug.FreeOSMemory,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}

	entries := map[string]streaming.PathConfig{}
	recEntries := map[string]record.PathConfig{}
	fleet, err := st.FleetPaths()
	if err != nil {
		return nil, fmt.Errorf("restore fleet paths: %w", err)
	}
	for name, p := range fleet {
		if _, inFile := cfg.Paths[name]; inFile {
			a.log.Warn().Str("path", name).Msg("fleet-managed path shadowed by the config file")
			continue
		}
		entries[name] = pathConfig(cfg.PathDefaults, p)
		recEntries[name] = recordConfig(cfg.PathDefaults, p)
	}
	for name, p := range cfg.Paths {
		entries[name] = pathConfig(cfg.PathDefaults, p)
		recEntries[name] = recordConfig(cfg.PathDefaults, p)
	}
	rtspPort := port(cfg.RTSP.Address)
	commands := exec.New(exec.Options{RTSPPort: strconv.Itoa(rtspPort), Log: a.log})
	waker := &recordWaker{next: a.events}
	a.paths, err = streaming.NewManager(streaming.ManagerOptions{Log: a.log, Events: waker, Commands: commands}, entries)
	if err != nil {
		return nil, fmt.Errorf("paths: %w", err)
	}
	a.rec, err = record.New(record.Options{
		Log: a.log, Events: a.events, Paths: a.paths, BaseDir: a.dataDir,
		Defaults: recordConfig(cfg.PathDefaults, conf.PathConf{}),
		Resolve:  a.paths.EntryFor, DiskUsage: hal.DiskUsage,
	}, recEntries)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	waker.rec = a.rec

	ro := rtspserver.Options{
		Address:        cfg.RTSP.Address,
		RTPAddress:     cfg.RTSP.RTPAddress,
		RTCPAddress:    cfg.RTSP.RTCPAddress,
		WriteQueueSize: cfg.RTSP.WriteQueueSize,
		MaxConns:       cfg.RTSP.MaxConnections,
		MaxConnsPerIP:  cfg.RTSP.MaxConnectionsPerIP,
		BasicOnly:      hasHashedPassword(cfg.Auth.Users),
		Log:            a.log,
		Events:         a.events,
	}
	for _, t := range cfg.RTSP.Transports {
		switch t {
		case "udp":
			ro.UDP = true
		case "tcp":
			ro.TCP = true
		}
	}
	a.rtsp = rtspserver.New(ro, a.paths, a.auth)

	if c := cfg.HLS; c.Address != "" {
		// New binds its listener; Run closes it.
		a.hls, err = hls.New(hls.Options{
			Address: c.Address, Paths: a.paths, Auth: a.auth,
			MaxConns: c.MaxConnections, MaxConnsPerIP: c.MaxConnectionsPerIP, Logger: a.log,
		})
		if err != nil {
			return nil, fmt.Errorf("hls: %w", err)
		}
	}
	if cfg.WebRTC.Address != "" {
		wo := webrtcOptions(cfg.WebRTC)
		wo.Paths, wo.Lister, wo.Auth, wo.Logger = a.paths, a.paths, a.auth, a.log
		wo.RTSPPort = rtspPort
		if a.hls != nil {
			wo.HLSPort = port(a.hls.Addr().String())
		}
		a.box = newBoxStatus(a)
		wo.Box = a.box.get
		wo.PlaybackAddress = cfg.Playback.Address
		// New binds its sockets; Run closes them.
		if a.webrtc, err = webrtc.New(wo); err != nil {
			if a.hls != nil {
				a.hls.Close()
			}
			return nil, fmt.Errorf("webrtc: %w", err)
		}
	}
	if c := cfg.Playback; c.Address != "" {
		// NewPlayback binds its listener; Run closes it.
		a.replay, err = record.NewPlayback(record.PlaybackOptions{
			Address: c.Address, Recorder: a.rec, Auth: a.auth, AllowOrigin: playerOrigin(cfg.WebRTC.Address),
			MaxConns: c.MaxConnections, MaxConnsPerIP: c.MaxConnectionsPerIP, Log: a.log,
		})
		if err != nil {
			if a.webrtc != nil {
				_ = a.webrtc.Close()
			}
			if a.hls != nil {
				a.hls.Close()
			}
			return nil, fmt.Errorf("playback: %w", err)
		}
	}
	return a, nil
}

// Ready is closed once Run has every listener up.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// ID is the agent id.
func (a *Agent) ID() string { return a.id }

// Run runs every part until ctx ends or one fails, then shuts all down.
// A restart requested by a command returns hal.ErrRestartRequested.
func (a *Agent) Run(ctx context.Context) error {
	defer func() {
		if err := a.store.Close(); err != nil {
			a.log.Error().Err(err).Msg("close store")
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	if err := a.rtsp.Start(); err != nil {
		a.paths.Close()
		if a.webrtc != nil {
			_ = a.webrtc.Close()
		}
		if a.hls != nil {
			a.hls.Close()
		}
		if a.replay != nil {
			_ = a.replay.Close()
		}
		return err
	}
	g.Go(func() error { return a.paths.Run(gctx) })
	g.Go(func() error { return a.rec.Run(gctx) })
	if a.replay != nil {
		g.Go(func() error { return a.replay.Run(gctx) })
	}
	g.Go(func() error { return a.link.Run(gctx) })
	g.Go(func() error { return a.update.Run(gctx) })
	if a.webrtc != nil {
		g.Go(func() error { return a.webrtc.Run(gctx) })
	}
	if a.hls != nil {
		g.Go(func() error { return a.hls.Run(gctx) })
	}
	// A listener that ends by itself ends Run with an error: the process
	// exits non-zero and the service manager restarts it.
	g.Go(func() error { return a.rtsp.Serve(gctx) })
	g.Go(func() error {
		// A page found damaged while running: restart, and the next Open
		// checks the whole file and recovers it (see store.Damaged).
		select {
		case <-a.store.Damaged():
			a.log.Error().Msg("state file damaged, restarting to recover it")
			a.requestRestart()
		case <-gctx.Done():
		}
		return nil
	})
	restarting := false
	g.Go(func() error {
		select {
		case <-a.restart:
			restarting = true
			cancel()
		case <-gctx.Done():
		}
		return nil
	})
	select {
	case <-a.link.up:
	case <-gctx.Done():
	}
	a.log.Info().Str("version", Version).Uint64("boot", a.store.BootCount()).Str("dataDir", a.dataDir).
		Str("rtsp", a.cfg.RTSP.Address).Msg("camgate started")
	a.events.Event(streaming.Event{Type: eventtype.AgentStarted, Detail: Version})
	close(a.ready)
	hal.Ready(ctx)
	if a.opts.Trial != nil {
		g.Go(func() error { return a.runTrial(gctx, cancel) })
	} else {
		a.reportUpdate()
		g.Go(func() error { return a.confirmUpdate(gctx) })
	}

	err := g.Wait()
	a.log.Info().Msg("camgate stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil && restarting {
		if a.trialCand.Load() != nil {
			return errUpdateTrial
		}
		return hal.ErrRestartRequested
	}
	return err
}

// listenerStats are the figures of every TCP listener the config asks for.
func (a *Agent) listenerStats() []guard.Stats {
	out := []guard.Stats{a.rtsp.ListenerStats()}
	if a.webrtc != nil {
		out = append(out, a.webrtc.ListenerStats()...)
	}
	if a.hls != nil {
		out = append(out, a.hls.ListenerStats())
	}
	if a.replay != nil {
		out = append(out, a.replay.ListenerStats())
	}
	if a.cfg.API.Address != "" {
		if s := a.link.api.Load(); s != nil {
			out = append(out, s.ListenerStats())
		} else {
			out = append(out, guard.Stats{Name: "api", Addr: a.cfg.API.Address})
		}
	}
	return out
}

// requestRestart makes Run return hal.ErrRestartRequested.
func (a *Agent) requestRestart() {
	a.restartOnce.Do(func() { close(a.restart) })
}
