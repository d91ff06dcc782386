package streaming

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/eventtype"
)

// CatchAll is the entry name applied to any name no other entry matches.
const CatchAll = "all_others"

// ManagerOptions configure a Manager. Zero values take the stated defaults.
type ManagerOptions struct {
	Log    zerolog.Logger
	Events EventSink // default: discard
	// RetryMin is the first reconnect wait of a failed source; default 1 s.
	// The wait doubles up to the path's RetryMax (sourceRetryMax).
	RetryMin time.Duration
	// RetryMax caps the reconnect wait of paths that set none; default 5 s.
	RetryMax time.Duration
	// ProbeInterval is how often a failed camera's port is probed between
	// full attempts (jittered by a quarter either way); default 1 s.
	ProbeInterval time.Duration
	// HealthyAfter is how long a source must stay up for the backoff to
	// start again from RetryMin; default 1 min.
	HealthyAfter time.Duration
	// Commands runs the paths' runOnInit and runOnDemand commands; nil
	// runs none (a path that has one logs that it is not run).
	Commands CommandRunner
}

// Manager owns every path.
type Manager struct {
	opts   ManagerOptions
	log    zerolog.Logger
	events EventSink
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[string]PathConfig // exact names
	regexps []regexpEntry
	catch   *PathConfig
	paths   map[string]*path
	closed  bool
}

type regexpEntry struct {
	re   *regexp.Regexp
	name string
	conf PathConfig
}

// NewManager returns a manager with the given path entries (names, "~regexp"
// entries and all_others). Always-on sources start when Run is called.
func NewManager(opts ManagerOptions, entries map[string]PathConfig) (*Manager, error) {
	if opts.Events == nil {
		opts.Events = nopSink{}
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Second
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = time.Second
	}
	if opts.HealthyAfter <= 0 {
		opts.HealthyAfter = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts:    opts,
		log:     opts.Log.With().Str("component", "paths").Logger(),
		events:  opts.Events,
		ctx:     ctx,
		cancel:  cancel,
		entries: map[string]PathConfig{},
		paths:   map[string]*path{},
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := m.setEntryLocked(n, entries[n]); err != nil {
			cancel()
			return nil, err
		}
	}
	return m, nil
}

func (m *Manager) setEntryLocked(name string, c PathConfig) error {
	switch {
	case name == CatchAll:
		cc := c
		m.catch = &cc
	case strings.HasPrefix(name, "~"):
		re, err := regexp.Compile(name[1:])
		if err != nil {
			return fmt.Errorf("path %q: %w", name, err)
		}
		m.regexps = append(m.regexps, regexpEntry{re: re, name: name, conf: c})
	default:
		m.entries[name] = c
		m.paths[name] = newPath(m, name, c, false)
	}
	return nil
}

// Run starts always-on sources and, when ctx ends, closes every path and
// waits for their sources.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	for _, p := range m.paths {
		p.startAlwaysOn()
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.Close()
	return nil
}

// Close shuts every path down and waits for their goroutines.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	paths := make([]*path, 0, len(m.paths))
	for _, p := range m.paths {
		paths = append(paths, p)
	}
	m.paths = map[string]*path{}
	m.mu.Unlock()
	// Every source and command is told to stop at once, so that the
	// commands' grace periods run side by side, not one after another.
	m.cancel()
	for _, p := range paths {
		p.shutdown(ErrClosed)
	}
	m.wg.Wait()
}

// lookup returns the path for name, creating a dynamic one from a regexp
// or all_others entry.
func (m *Manager) lookup(name string) (*path, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if p, ok := m.paths[name]; ok {
		return p, nil
	}
	for _, e := range m.regexps {
		if e.re.MatchString(name) {
			p := newPath(m, name, e.conf, true)
			p.entry = e.name
			p.vars = regexpVars(e, name)
			m.paths[name] = p
			return p, nil
		}
	}
	if m.catch != nil {
		p := newPath(m, name, *m.catch, true)
		p.entry = CatchAll
		m.paths[name] = p
		return p, nil
	}
	return nil, ErrPathNotFound
}

// maybeRemove forgets a dynamic path nobody uses.
func (m *Manager) maybeRemove(p *path) {
	if !p.dynamic {
		return
	}
	m.mu.Lock()
	p.mu.Lock()
	if p.unused() && m.paths[p.name] == p {
		delete(m.paths, p.name)
		p.closed = true
	}
	p.mu.Unlock()
	m.mu.Unlock()
}

// ReaderRequest describes who reads, for logs and limits.
type ReaderRequest struct {
	Protocol   string // rtsp, webrtc
	RemoteAddr net.Addr
}

// Lease is a reader's hold on a path: while held, an on-demand source keeps
// running.
type Lease struct {
	p    *path
	s    *Stream
	once sync.Once
}

// Stream is the stream the lease was granted on.
func (l *Lease) Stream() *Stream { return l.s }

// Path is the path's name.
func (l *Lease) Path() string { return l.p.name }

// Release gives the hold back. It is safe to call more than once.
func (l *Lease) Release() { l.once.Do(l.p.release) }

// Acquire registers a reader of name, starting an on-demand source and
// waiting for it up to the path's start timeout.
func (m *Manager) Acquire(ctx context.Context, name string, _ ReaderRequest) (*Lease, error) {
	p, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	l, err := p.acquire(ctx)
	if err != nil {
		m.maybeRemove(p)
		return nil, err
	}
	return l, nil
}

// Publication is a publisher's hold on a path.
type Publication struct {
	p      *path
	s      *Stream
	remote string
	onKick func()
	once   sync.Once
}

// Publish makes the caller the source of a publisher path. onKick is called
// (once, without locks held) when the path wants the publisher gone:
// removed, reconfigured or restarted.
func (m *Manager) Publish(name string, desc *description.Session, req ReaderRequest, onKick func()) (*Publication, error) {
	p, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if !p.conf.isPublisher() || p.closed {
		p.mu.Unlock()
		if p.closed {
			return nil, ErrPathNotFound
		}
		return nil, ErrNotPublisherPath
	}
	if p.publisher != nil {
		p.mu.Unlock()
		m.events.Event(Event{Type: eventtype.PublisherRefused, Path: name, Detail: "another publisher is active"})
		return nil, ErrPublisherExists
	}
	remote := ""
	if req.RemoteAddr != nil {
		remote = req.RemoteAddr.String()
	}
	pub := &Publication{p: p, remote: remote, onKick: onKick}
	old := p.stream
	p.stream = newStream(desc, &p.counters)
	pub.s = p.stream
	p.publisher = pub
	p.state = StateReady
	p.lastErr = ""
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
	p.mu.Unlock()
	if old != nil {
		old.close(ErrTracksChanged)
	}
	p.log.Info().Str("tracks", describeTracks(desc)).Str("remote", remote).Msg("publisher started")
	m.events.Event(Event{Type: eventtype.PathReady, Path: name, Detail: "publisher " + remote + ": " + describeTracks(desc)})
	return pub, nil
}

// Stream is the stream readers of the publication read.
func (pub *Publication) Stream() *Stream { return pub.s }

// WriteRTP forwards one packet of a media of the published description.
func (pub *Publication) WriteRTP(medi *description.Media, forma format.Format, pkt *rtp.Packet, ntp time.Time) {
	for i, m := range pub.s.desc.Medias {
		if m == medi {
			pub.s.WriteRTP(i, forma, pkt, ntp)
			return
		}
	}
}

// Close ends the publication; readers of the path are disconnected.
func (pub *Publication) Close() {
	p := pub.p
	p.mu.Lock()
	if p.publisher != pub {
		p.mu.Unlock()
		return
	}
	p.publisher = nil
	finish := p.detachLocked(ErrStreamClosed)
	p.mu.Unlock()
	p.finishClose(finish, "publisher gone")
}

func (pub *Publication) kick() {
	pub.once.Do(func() {
		if pub.onKick != nil {
			pub.onKick()
		}
	})
	pub.Close()
}

// PathInfo is a path's state and figures.
type PathInfo struct {
	Name       string  `json:"name"`
	Source     string  `json:"source"` // credentials redacted
	State      State   `json:"state"`
	OnDemand   bool    `json:"onDemand"`
	Readers    int     `json:"readers"`
	Tracks     string  `json:"tracks,omitempty"`
	Publisher  string  `json:"publisher,omitempty"`
	BytesIn    uint64  `json:"bytesIn"`
	BytesOut   uint64  `json:"bytesOut"`
	PacketsIn  uint64  `json:"packetsIn"`
	BitrateIn  float64 `json:"bitrate"` // bits/s received
	Reconnects uint64  `json:"reconnects"`
	Dropped    uint64  `json:"dropped"` // packets lost by slow readers
	LastError  string  `json:"lastError,omitempty"`
	// Entry is the all_others or "~regexp" entry a dynamic path was made
	// from; "" for a configured name. The agent's listing reports it as
	// the path's origin.
	Entry string `json:"-"`
}

// Paths lists the paths that exist now (configured names and dynamic
// paths in use), sorted by name.
func (m *Manager) Paths() []PathInfo {
	m.mu.Lock()
	ps := make([]*path, 0, len(m.paths))
	for _, p := range m.paths {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	out := make([]PathInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Path returns one path's figures.
func (m *Manager) Path(name string) (PathInfo, bool) {
	m.mu.Lock()
	p, ok := m.paths[name]
	m.mu.Unlock()
	if !ok {
		return PathInfo{}, false
	}
	return p.info(), true
}

// Has reports whether name is a configured entry (not a dynamic path).
func (m *Manager) Has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[name]; ok {
		return true
	}
	if name == CatchAll {
		return m.catch != nil
	}
	for _, e := range m.regexps {
		if e.name == name {
			return true
		}
	}
	return false
}

// EntryFor names the entry that governs name: name itself when it is
// configured, else the first "~regexp" entry matching it, else all_others.
// It creates no path.
func (m *Manager) EntryFor(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[name]; ok {
		return name, true
	}
	for _, e := range m.regexps {
		if e.re.MatchString(name) {
			return e.name, true
		}
	}
	if m.catch != nil {
		return CatchAll, true
	}
	return "", false
}

// AddPath adds an entry; ErrPathExists if it is configured already.
func (m *Manager) AddPath(name string, c PathConfig) error {
	if m.Has(name) {
		return fmt.Errorf("%w: %s", ErrPathExists, name)
	}
	return m.SetPath(name, c)
}

// UpdatePath replaces an entry; ErrPathNotFound if absent.
func (m *Manager) UpdatePath(name string, c PathConfig) error {
	if !m.Has(name) {
		return fmt.Errorf("%w: %s", ErrPathNotFound, name)
	}
	return m.SetPath(name, c)
}

// SetPath adds or replaces an entry. Readers and the publisher of a
// replaced path are disconnected; they reconnect to the new one.
func (m *Manager) SetPath(name string, c PathConfig) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	old := m.removeEntryLocked(name)
	err := m.setEntryLocked(name, c)
	p := m.paths[name]
	m.mu.Unlock()
	for _, o := range old {
		o.shutdown(ErrStreamClosed)
	}
	if err != nil {
		return err
	}
	if p != nil {
		p.startAlwaysOn()
	}
	return nil
}

// RemovePath deletes an entry; its readers are disconnected.
func (m *Manager) RemovePath(name string) error {
	if !m.Has(name) {
		return fmt.Errorf("%w: %s", ErrPathNotFound, name)
	}
	m.mu.Lock()
	old := m.removeEntryLocked(name)
	m.mu.Unlock()
	for _, o := range old {
		o.shutdown(ErrStreamClosed)
	}
	return nil
}

// removeEntryLocked deletes an entry and returns the live paths it governed.
func (m *Manager) removeEntryLocked(name string) []*path {
	var out []*path
	switch {
	case name == CatchAll:
		m.catch = nil
		for n, p := range m.paths {
			if p.dynamic && !m.matchesRegexpLocked(n) {
				out = append(out, p)
				delete(m.paths, n)
			}
		}
	case strings.HasPrefix(name, "~"):
		for i, e := range m.regexps {
			if e.name == name {
				m.regexps = append(m.regexps[:i], m.regexps[i+1:]...)
				for n, p := range m.paths {
					if p.dynamic && e.re.MatchString(n) {
						out = append(out, p)
						delete(m.paths, n)
					}
				}
				break
			}
		}
	default:
		delete(m.entries, name)
		if p, ok := m.paths[name]; ok {
			out = append(out, p)
			delete(m.paths, name)
		}
	}
	return out
}

func (m *Manager) matchesRegexpLocked(name string) bool {
	for _, e := range m.regexps {
		if e.re.MatchString(name) {
			return true
		}
	}
	return false
}

// RestartPath reconnects a path's source (or drops its publisher).
func (m *Manager) RestartPath(name string) error {
	m.mu.Lock()
	p, ok := m.paths[name]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrPathNotFound, name)
	}
	p.restart()
	return nil
}
