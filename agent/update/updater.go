package update

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
)

// Options configure New. Zero values take the defaults in the comments.
type Options struct {
	// DataDir holds the update's files (update/, bin/); required.
	DataDir string
	// Keys verify every download; empty refuses every update.
	Keys Keys
	// Version is the running version; an update to it is a no-op.
	Version string
	// ConfigFile is handed to the candidate's check-config and run; ""
	// for the embedded defaults.
	ConfigFile string
	// Executable is the running binary; default os.Executable().
	Executable string
	// MaxSize bounds a download; default 256 MiB.
	MaxSize int64
	// Client fetches updates; default: 30 s to connect and to get the
	// response headers, no bound on the whole transfer.
	Client *http.Client
	// SelfTestTimeout bounds each self-test run of the candidate; default 60s.
	SelfTestTimeout time.Duration
	// Events raises update.progress and update.failed; required.
	Events func(typ string, detail any)
	// Trial is called once a candidate is staged and has passed its
	// checks; the agent then stops and runs RunTrial. Required.
	Trial func(c Binary)
	// OnTrial marks a process that is itself a candidate on trial: every
	// update is refused with ErrInProgress.
	OnTrial bool
	Log     zerolog.Logger
}

// Request is the args of agent.update.
type Request struct {
	URL string `json:"url"`
	// SHA256 is the hex SHA-256 of the file at URL.
	SHA256 string `json:"sha256"`
	// Signature is the text of the minisign signature (.minisig) of the
	// file at URL.
	Signature string `json:"signature"`
	// Version is the version the file holds; optional. When given it must
	// match what the binary says, and equal to the running one it makes
	// the update a no-op.
	Version string `json:"version,omitempty"`
}

// Reply is the result of an accepted agent.update.
type Reply struct {
	Accepted bool   `json:"accepted,omitempty"`
	Noop     bool   `json:"noop,omitempty"`
	Version  string `json:"version,omitempty"`
	Running  string `json:"running"`
}

// Updater downloads, checks and stages updates for the running agent. Run
// executes one update at a time; Start hands it one.
type Updater struct {
	opts   Options
	layout Layout
	log    zerolog.Logger
	jobs   chan Request

	mu   sync.Mutex
	busy bool
}

// New prepares an updater; nothing happens until Run.
func New(opts Options) (*Updater, error) {
	if opts.DataDir == "" || opts.Events == nil || opts.Trial == nil {
		return nil, errors.New("update: DataDir, Events and Trial are required")
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("update: own executable: %w", err)
		}
		opts.Executable = exe
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = 256 << 20
	}
	if opts.SelfTestTimeout <= 0 {
		opts.SelfTestTimeout = 60 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}}
	}
	return &Updater{
		opts: opts, layout: NewLayout(opts.DataDir), jobs: make(chan Request, 1),
		log: opts.Log.With().Str("component", "update").Logger(),
	}, nil
}

// Start checks req and queues it. The reply is sent when the update is
// accepted: the download and its checks take a while, and their progress
// and outcome are events (update.progress, update.failed, then after the
// trial update.committed or update.rolled_back).
func (u *Updater) Start(req Request) (Reply, error) {
	rep := Reply{Running: u.opts.Version, Version: req.Version}
	if err := req.validate(); err != nil {
		return rep, err
	}
	if len(u.opts.Keys) == 0 {
		return rep, ErrNoKeys
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.busy || u.opts.OnTrial {
		return rep, ErrInProgress
	}
	if req.Version != "" && req.Version == u.opts.Version {
		rep.Noop = true
		return rep, nil
	}
	select {
	case u.jobs <- req:
	default:
		return rep, ErrInProgress
	}
	u.busy = true
	rep.Accepted = true
	return rep, nil
}

func (r Request) validate() error {
	p, err := url.Parse(r.URL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%w: url must be http:// or https://", ErrBadRequest)
	}
	if b, err := hex.DecodeString(r.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: sha256 must be 64 hex digits", ErrBadRequest)
	}
	var s minisign.Signature
	if err := s.UnmarshalText([]byte(strings.TrimSpace(r.Signature))); err != nil {
		return fmt.Errorf("%w: signature is not a minisign signature (the text of a .minisig file)", ErrBadRequest)
	}
	if len(r.Version) > 128 || strings.ContainsAny(r.Version, " \t\r\n") {
		return fmt.Errorf("%w: version must be one word", ErrBadRequest)
	}
	return nil
}

// Run runs queued updates until ctx ends.
func (u *Updater) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case req := <-u.jobs:
			c, err := u.prepare(ctx, req)
			if err != nil {
				u.fail(req, err)
				continue
			}
			// Busy stays set: the agent stops for the trial.
			u.opts.Trial(c)
		}
	}
}

func (u *Updater) fail(req Request, err error) {
	u.mu.Lock()
	u.busy = false
	u.mu.Unlock()
	detail := map[string]any{"version": req.Version, "url": redact.URL(req.URL), "error": redact.Error(err)}
	var ce *CheckError
	if errors.As(err, &ce) {
		detail["check"] = string(ce.Check)
	}
	if errors.Is(err, context.Canceled) {
		u.log.Info().Msg("update interrupted by the agent's stop; the download resumes with the next request")
		return
	}
	u.log.Warn().Str("url", redact.URL(req.URL)).Str("error", redact.Error(err)).Msg("update refused")
	u.opts.Events(uplink.EventUpdateFailed, detail)
}

// Confirm records that the running agent has stayed up for
// update.trialTimeout: the committed update is no longer counted as
// crash-looping (see Resolve).
func (u *Updater) Confirm() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.busy {
		return // the state belongs to the update under way
	}
	st, err := u.layout.LoadState()
	if err != nil || st.Starts == 0 {
		return
	}
	st.Starts = 0
	if err := u.layout.SaveState(st); err != nil {
		u.log.Warn().Err(err).Msg("confirm the committed update")
	}
}

// downloadMeta ties a partial download to the request it belongs to.
type downloadMeta struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// prepare downloads and checks req and stages its binary: on success the
// state file says PhaseTrial with the candidate.
func (u *Updater) prepare(ctx context.Context, req Request) (Binary, error) {
	l := u.layout
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	want := downloadMeta{URL: req.URL, SHA256: strings.ToLower(req.SHA256)}
	var have downloadMeta
	if b, err := os.ReadFile(l.partMeta()); err != nil || json.Unmarshal(b, &have) != nil || have != want {
		_ = os.Remove(l.partPath()) // another update's partial file
		mb, _ := json.Marshal(want)
		if err := writeFileSync(l.partMeta(), mb, 0o600); err != nil {
			return Binary{}, checkErr(CheckStage, "%v", err)
		}
	}
	discard := func() {
		_ = os.Remove(l.partPath())
		_ = os.Remove(l.partMeta())
	}
	pl := &progressLimiter{now: time.Now, emit: func(pct int, done, total int64) {
		u.opts.Events(uplink.EventUpdateProgress, map[string]any{"stage": "download", "version": req.Version, "percent": pct, "bytes": done, "total": total})
	}}
	u.log.Info().Str("url", redact.URL(req.URL)).Str("version", req.Version).Msg("update: downloading")
	size, err := download(ctx, u.opts.Client, req.URL, l.partPath(), u.opts.MaxSize, pl.update)
	switch {
	case errors.Is(err, ErrTooLarge):
		discard()
		return Binary{}, &CheckError{Check: CheckSize, Err: err}
	case ctx.Err() != nil:
		return Binary{}, ctx.Err()
	case err != nil:
		return Binary{}, &CheckError{Check: CheckDownload, Err: err}
	case size == 0:
		discard()
		return Binary{}, checkErr(CheckSize, "empty download")
	}
	sum, err := FileSHA256(l.partPath())
	if err != nil {
		return Binary{}, checkErr(CheckDownload, "%v", err)
	}
	if sum != want.SHA256 {
		discard()
		return Binary{}, checkErr(CheckSHA256, "download of %d bytes has SHA-256 %s, want %s", size, sum, want.SHA256)
	}
	ver, err := u.opts.Keys.VerifyFile(l.partPath(), []byte(req.Signature))
	if err != nil {
		discard()
		return Binary{}, &CheckError{Check: CheckSignature, Err: err}
	}
	u.log.Info().Str("key", ver.KeyID).Str("trusted", ver.TrustedComment).Int64("bytes", size).Msg("update: size, SHA-256 and signature verified")

	c, err := u.stage(l.partPath())
	discard()
	if err != nil {
		return Binary{}, err
	}
	drop := func() { _ = os.Remove(c.Path) }
	got, err := u.selfTest(ctx, c.Path)
	if err != nil {
		drop()
		return Binary{}, err
	}
	c.Version = got
	switch {
	case req.Version != "" && got != req.Version:
		drop()
		return Binary{}, checkErr(CheckVersion, "the binary says version %q, the request %q", got, req.Version)
	case got == u.opts.Version:
		drop()
		return Binary{}, checkErr(CheckVersion, "the binary is the running version %q", got)
	}
	st, err := l.LoadState()
	if err != nil {
		drop()
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	st.Phase, st.Candidate = PhaseTrial, &c
	if err := l.SaveState(st); err != nil {
		drop()
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	u.log.Info().Str("version", c.Version).Str("path", c.Path).Msg("update: candidate passed its self-test; trial next")
	return c, nil
}

// stage extracts the binary from the verified download to where it will
// run: dataDir/bin/camgate-<sha12> (or, on in-place platforms, beside the
// running executable as camgate.new.exe).
func (u *Updater) stage(download string) (Binary, error) {
	dir := u.layout.Bin
	if hal.UpdateInPlace() {
		dir = filepath.Dir(u.opts.Executable)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	tmp := filepath.Join(dir, ".staging-"+hal.ExecutableName())
	if _, err := extractBinary(download, hal.ExecutableName(), tmp, u.opts.MaxSize); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return Binary{}, &CheckError{Check: CheckSize, Err: err}
		}
		return Binary{}, &CheckError{Check: CheckArchive, Err: err}
	}
	sum, err := FileSHA256(tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	name := "camgate-" + sum[:12]
	if hal.UpdateInPlace() {
		name = strings.TrimSuffix(hal.ExecutableName(), ".exe") + ".new.exe"
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	if err := syncDir(dir); err != nil {
		return Binary{}, checkErr(CheckStage, "%v", err)
	}
	return Binary{Path: path, SHA256: sum}, nil
}

// selfTest runs `NEW version` and `NEW check-config [-c FILE]`: a binary
// for another platform, or one that cannot read the current config, is
// refused while the running agent goes on. It returns the version the
// binary reports.
func (u *Updater) selfTest(ctx context.Context, bin string) (string, error) {
	run := func(args ...string) ([]byte, error) {
		tctx, cancel := context.WithTimeout(ctx, u.opts.SelfTestTimeout)
		defer cancel()
		cmd := exec.CommandContext(tctx, bin, args...)
		cmd.Env = childEnv(os.Environ())
		cmd.WaitDelay = time.Second
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, checkErr(CheckSelfTest, "%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, lastLines(redact.String(errb.String()), 3))
		}
		return out.Bytes(), nil
	}
	out, err := run("version")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "camgate" {
		return "", checkErr(CheckSelfTest, "%s version printed %q, not camgate's version line", filepath.Base(bin), lastLines(string(out), 1))
	}
	args := []string{"check-config"}
	if u.opts.ConfigFile != "" {
		args = append(args, "-c", u.opts.ConfigFile)
	}
	if _, err := run(args...); err != nil {
		return "", err
	}
	return f[1], nil
}

// lastLines is the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, " | ")
}

// Environment variables between the agent and the binaries it starts.
const (
	// envTrial marks a candidate on trial; its value is "service" when
	// the supervising agent runs under a service manager.
	envTrial = "CAMGATE_TRIAL"
	// envRedirected marks an agent started by the installed binary's
	// redirect or a hand-over, which must not redirect again.
	envRedirected = "CAMGATE_REDIRECTED"
)

// childEnv is env without what belongs to the agent's own process: the
// systemd notify socket and watchdog (the service manager only listens to
// the main process) and the markers above.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", envTrial, envRedirected:
			continue
		}
		out = append(out, kv)
	}
	return out
}
