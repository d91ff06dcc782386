package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
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
	rec    *record.Recorder
	replay *record.Playback // nil when playback.address is empty
	link   *link            // fleet side: events, uplink, commands, local API

	// restart is closed when a command asked the agent to restart.
	restart chan struct{}
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
	if a.link, err = newLink(a); err != nil {
		return nil, err
	}
	a.events = a.link.events

	a.auth, err = auth.New(authUsers(cfg.Auth.Users))
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
	waker := &recordWaker{next: a.events}
	a.paths, err = streaming.NewManager(streaming.ManagerOptions{Log: a.log, Events: waker}, entries)
	if err != nil {
		return nil, fmt.Errorf("paths: %w", err)
	}
	a.rec, err = record.New(record.Options{
		Log: a.log, Events: a.events, Paths: a.paths, BaseDir: a.dataDir,
		Defaults: recordConfig(cfg.PathDefaults, conf.PathConf{}),
		Resolve:  a.paths.EntryFor, ValidName: conf.ValidatePathName, DiskUsage: hal.DiskUsage,
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

	if cfg.WebRTC.Address != "" {
		wo := webrtcOptions(cfg.WebRTC)
		wo.Paths, wo.Lister, wo.Auth, wo.Logger = a.paths, a.paths, a.auth, a.log
		wo.PlaybackAddress = cfg.Playback.Address
		// New binds its sockets; Run closes them.
		if a.webrtc, err = webrtc.New(wo); err != nil {
			return nil, fmt.Errorf("webrtc: %w", err)
		}
	}
	if addr := cfg.Playback.Address; addr != "" {
		// The listener guard of the other listeners is applied at merge.
		a.replay, err = record.NewPlayback(record.PlaybackOptions{
			Address: addr, Recorder: a.rec, Auth: a.auth, AllowOrigin: playerOrigin(cfg.WebRTC.Address), Log: a.log,
		})
		if err != nil {
			if a.webrtc != nil {
				_ = a.webrtc.Close()
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
	if a.webrtc != nil {
		g.Go(func() error { return a.webrtc.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		a.rtsp.Close()
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
	a.events.Event(streaming.Event{Type: "agent.started", Detail: Version})
	close(a.ready)
	hal.Ready(ctx)

	err := g.Wait()
	a.log.Info().Msg("camgate stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil && restarting {
		return hal.ErrRestartRequested
	}
	return err
}

// requestRestart makes Run return hal.ErrRestartRequested.
func (a *Agent) requestRestart() {
	select {
	case <-a.restart:
	default:
		close(a.restart)
	}
}
