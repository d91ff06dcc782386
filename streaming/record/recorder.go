package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/backoff"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
)

// Paths is the streaming core as the recorder uses it; *streaming.Manager
// satisfies it.
type Paths interface {
	Acquire(ctx context.Context, name string, req streaming.ReaderRequest) (*streaming.Lease, error)
}

// Options configure a Recorder. Zero values take the stated defaults.
type Options struct {
	Log zerolog.Logger
	// Events receives record.* events; default: discard.
	Events streaming.EventSink
	// Paths gives access to streams; required.
	Paths Paths
	// BaseDir is where relative recordPaths are; default the working
	// directory.
	BaseDir string
	// Defaults is the retention that applies to recordings of a path no
	// entry governs any more (it was removed): pathDefaults.
	Defaults PathConfig
	// Resolve names the entry ("~regexp" or all_others) that governs a
	// path name which is not an entry itself; nil: only entries record.
	Resolve func(name string) (entry string, ok bool)
	// DiskUsage gives the free and total bytes of the volume holding dir;
	// nil: recordMinFreeBytes is not enforced.
	DiskUsage func(dir string) (free, total uint64, err error)
	// QueueSize is the packets queued per recorded path while the disk is
	// busy (a sync takes long on SD cards); default 4096.
	QueueSize int
	// RetentionInterval is how often segments are checked against
	// recordDeleteAfter and the budgets; default 10 s.
	RetentionInterval time.Duration
	// RescanInterval is how often the directories are read again for
	// segments added or removed by hand; default 1 min.
	RescanInterval time.Duration
	// EventInterval is the window over which repeated errors and
	// deletions are gathered into one event; default 1 min.
	EventInterval time.Duration
	// RetryMin and RetryMax bound the wait before a path is acquired
	// again; default 1 s and 30 s.
	RetryMin, RetryMax time.Duration
	// Now is the clock of retention by age; default time.Now.
	Now func() time.Time
}

// Recorder records the paths whose config says so and keeps their
// recordings within the budgets.
type Recorder struct {
	o    Options
	log  zerolog.Logger
	base string
	idx  *index
	ev   *coalescer

	mu        sync.Mutex
	entries   map[string]PathConfig // by entry name, defaults applied
	overrides map[string]bool       // path.record
	workers   map[string]*worker
	woken     map[string]bool // names woken before Run
	status    map[string]*pathState
	ctx       context.Context // Run's; nil before Run and after it ended
	wg        sync.WaitGroup

	roomMu sync.Mutex // one budget check at a time: they delete
}

// pathState is a path's recording state for health.
type pathState struct {
	recording int // writers at work (two for a moment when settings change)
	lastErr   string
	written   atomic.Uint64
}

// worker records one path: it holds a lease on it while recording.
type worker struct {
	name    string
	dynamic bool // a name made by a "~regexp" or all_others entry
	cancel  context.CancelFunc
	done    chan struct{}
	wake    chan struct{}
}

// New checks the entries; nothing runs until Run.
func New(o Options, entries map[string]PathConfig) (*Recorder, error) {
	if o.Paths == nil {
		return nil, errors.New("record: Paths is required")
	}
	if o.Events == nil {
		o.Events = nopSink{}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = 10 * time.Second
	}
	if o.RescanInterval <= 0 {
		o.RescanInterval = time.Minute
	}
	if o.EventInterval <= 0 {
		o.EventInterval = time.Minute
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	base := o.BaseDir
	if base == "" {
		base = "."
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, fmt.Errorf("record: base directory: %w", err)
	}
	if err := o.Defaults.Validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		o: o, log: o.Log.With().Str("component", "record").Logger(), base: abs,
		idx: newIndex(), ev: newCoalescer(o.Events),
		entries: map[string]PathConfig{}, overrides: map[string]bool{},
		workers: map[string]*worker{}, woken: map[string]bool{}, status: map[string]*pathState{},
	}
	for name, c := range entries {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("path %q: %w", name, err)
		}
		r.entries[name] = c.withDefaults()
	}
	return r, nil
}

type nopSink struct{}

func (nopSink) Event(streaming.Event) {}

// Run indexes the recordings on disk (repairing segments a crash left
// open), starts recording, and applies retention until ctx ends; then it
// finishes every open segment and returns nil.
func (r *Recorder) Run(ctx context.Context) error {
	r.rescan(true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.ctx = ctx
	r.reconcileLocked()
	woken := r.woken
	r.woken = nil
	r.mu.Unlock()
	for name := range woken {
		r.Wake(name)
	}

	retain := time.NewTicker(r.o.RetentionInterval)
	rescan := time.NewTicker(r.o.RescanInterval)
	flush := time.NewTicker(r.o.EventInterval)
	defer retain.Stop()
	defer rescan.Stop()
	defer flush.Stop()
	r.retain()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.ctx = nil
			ws := make([]*worker, 0, len(r.workers))
			for _, w := range r.workers {
				ws = append(ws, w)
				w.cancel()
			}
			r.mu.Unlock()
			for _, w := range ws {
				<-w.done
			}
			r.wg.Wait()
			r.ev.flush(r.o.EventInterval)
			return nil
		case <-retain.C:
			r.retain()
		case <-rescan.C:
			r.rescan(false)
		case <-flush.C:
			r.ev.flush(r.o.EventInterval)
		}
	}
}

// configForLocked is the config that governs name and whether an entry
// does (else the defaults, for retention).
func (r *Recorder) configForLocked(name string) (PathConfig, bool) {
	if c, ok := r.entries[name]; ok {
		return c, true
	}
	if r.o.Resolve != nil {
		if e, ok := r.o.Resolve(name); ok {
			if c, ok := r.entries[e]; ok {
				return c, true
			}
		}
	}
	return r.o.Defaults.withDefaults(), false
}

// recordsLocked reports whether name should be recorded now.
func (r *Recorder) recordsLocked(name string) bool {
	c, ok := r.configForLocked(name)
	if !ok {
		return false // no entry governs it (any more)
	}
	if on, set := r.overrides[name]; set {
		return on
	}
	return c.Record
}

// isEntry reports whether name is a concrete entry (not a regexp or the
// catch-all, which only record the names they make).
func isEntry(name string) bool { return name != streaming.CatchAll && !strings.HasPrefix(name, "~") }

// reconcileLocked starts and stops workers to match the configuration.
func (r *Recorder) reconcileLocked() {
	if r.ctx == nil {
		return
	}
	for name := range r.entries {
		if isEntry(name) && r.recordsLocked(name) {
			r.startLocked(name, false)
		}
	}
	for name := range r.overrides {
		if _, entry := r.entries[name]; !entry && r.recordsLocked(name) {
			if _, ok := r.configForLocked(name); ok {
				r.startLocked(name, true)
			}
		}
	}
	for name, w := range r.workers {
		if !r.recordsLocked(name) {
			w.cancel()
			delete(r.workers, name)
		}
	}
}

func (r *Recorder) startLocked(name string, dynamic bool) {
	if _, ok := r.workers[name]; ok {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	w := &worker{name: name, dynamic: dynamic, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	r.workers[name] = w
	r.stateLocked(name)
	r.wg.Add(1)
	go r.work(ctx, w)
}

func (r *Recorder) stateLocked(name string) *pathState {
	st := r.status[name]
	if st == nil {
		st = &pathState{}
		r.status[name] = st
	}
	return st
}

// SetPath adds or replaces an entry; a running recording of it restarts
// with the new settings.
func (r *Recorder) SetPath(name string, c PathConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[name] = c.withDefaults()
	if w, ok := r.workers[name]; ok {
		w.cancel()
		delete(r.workers, name)
	}
	r.reconcileLocked()
	return nil
}

// RemovePath forgets an entry; its recordings stay, under the defaults'
// retention.
func (r *Recorder) RemovePath(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, name)
	delete(r.overrides, name)
	if w, ok := r.workers[name]; ok && isEntry(name) {
		w.cancel()
		delete(r.workers, name)
	}
	r.reconcileLocked()
}

// SetRecording turns recording of a path on or off whatever its config
// says, until the agent restarts or the path's entry changes.
func (r *Recorder) SetRecording(name string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.configForLocked(name); !ok {
		return fmt.Errorf("%w: %s", ErrNotRecorded, name)
	}
	r.overrides[name] = on
	r.reconcileLocked()
	return nil
}

// Wake tells the recorder that name has a stream now (a publisher came, a
// reader started a dynamic path): a path that records starts at once.
func (r *Recorder) Wake(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		if r.woken != nil {
			r.woken[name] = true
		}
		return
	}
	if !r.recordsLocked(name) {
		return
	}
	if _, ok := r.configForLocked(name); !ok {
		return
	}
	w, ok := r.workers[name]
	if !ok {
		_, entry := r.entries[name]
		r.startLocked(name, !entry)
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// work records one path: acquire it, record its stream until it ends,
// again until stopped.
func (r *Recorder) work(ctx context.Context, w *worker) {
	defer r.wg.Done()
	defer close(w.done)
	defer func() {
		r.mu.Lock()
		if r.workers[w.name] == w {
			delete(r.workers, w.name)
		}
		r.mu.Unlock()
	}()
	bo := backoff.Backoff{Min: r.o.RetryMin, Max: r.o.RetryMax}
	for {
		err := r.recordOnce(ctx, w)
		if ctx.Err() != nil {
			return
		}
		if w.dynamic && (errors.Is(err, streaming.ErrNoStream) || errors.Is(err, streaming.ErrPathNotFound)) {
			return // the publisher or reader that made the name is gone
		}
		if err != nil && !errors.Is(err, streaming.ErrNoStream) {
			r.setError(w.name, err.Error())
		}
		if errors.Is(err, streaming.ErrStreamClosed) || errors.Is(err, streaming.ErrTracksChanged) {
			bo.Reset()
			continue // take the path's next stream at once
		}
		t := time.NewTimer(bo.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// recordOnce records the stream the path has now, until it ends.
func (r *Recorder) recordOnce(ctx context.Context, w *worker) error {
	lease, err := r.o.Paths.Acquire(ctx, w.name, streaming.ReaderRequest{Protocol: "record"})
	if err != nil {
		return err
	}
	defer lease.Release()
	r.mu.Lock()
	cfg, _ := r.configForLocked(w.name)
	r.mu.Unlock()
	wr, err := newWriter(r, w.name, cfg, lease.Stream())
	if err != nil {
		return err
	}
	r.setRecording(w.name, true)
	defer r.setRecording(w.name, false)
	r.log.Info().Str("path", w.name).Msg("recording")
	return wr.run(ctx)
}

func (r *Recorder) setRecording(name string, on bool) {
	r.mu.Lock()
	st := r.stateLocked(name)
	if on {
		st.recording++
		st.lastErr = ""
	} else {
		st.recording--
	}
	r.mu.Unlock()
}

func (r *Recorder) setError(name, msg string) {
	r.mu.Lock()
	r.stateLocked(name).lastErr = msg
	r.mu.Unlock()
}

// report raises an event (coalesced) and, for errors, keeps it for health.
func (r *Recorder) report(name, typ, detail string) {
	if typ == EventError {
		r.setError(name, detail)
		r.log.Warn().Str("path", name).Str("error", detail).Msg("recording error")
	}
	r.ev.report(typ, name, detail)
}

// recorded counts bytes written for a path.
func (r *Recorder) recorded(name string, n int64) {
	r.mu.Lock()
	st := r.stateLocked(name)
	r.mu.Unlock()
	st.written.Add(uint64(n))
}

// makeRoom deletes the oldest segments until a part of need bytes fits in
// the path's recordMaxBytes and leaves recordMinFreeBytes free on the
// volume of file. It fails when the free space cannot be had: the part is
// then not written. rotate asks the writer to end the segment it writes,
// the only one left to delete.
func (r *Recorder) makeRoom(name string, cfg PathConfig, file, root string, need int64) (rotate bool, err error) {
	r.roomMu.Lock()
	defer r.roomMu.Unlock()
	rotate, err = r.trimLocked(name, cfg.MaxBytes, need)
	if err != nil || r.o.DiskUsage == nil {
		return rotate, err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rotate, fmt.Errorf("create %s: %w", dir, err)
	}
	ok, err := r.keepFreeLocked(dir, root, []PathConfig{cfg}, need)
	if err != nil {
		return rotate, err
	}
	if !ok {
		return true, ErrDiskFull
	}
	return rotate, nil
}

// trimLocked deletes a path's oldest segments until need more bytes fit
// in maxBytes (0: no bound). r.roomMu is held.
func (r *Recorder) trimLocked(name string, maxBytes uint64, need int64) (rotate bool, err error) {
	if maxBytes == 0 {
		return false, nil
	}
	for uint64(r.idx.usage(name).bytes+need) > maxBytes {
		old := r.idx.oldestOf(name)
		if old == nil {
			return true, nil
		}
		if err := r.delete(old, reasonMaxSize); err != nil {
			return false, err
		}
	}
	return false, nil
}

// keepFreeLocked deletes the oldest segments under root until need bytes
// can be written in dir leaving the largest minimum of cfgs free. It
// reports false when no segment is left to delete. r.roomMu is held.
func (r *Recorder) keepFreeLocked(dir, root string, cfgs []PathConfig, need int64) (bool, error) {
	for {
		free, total, err := r.o.DiskUsage(dir)
		if err != nil {
			return false, fmt.Errorf("free space of %s: %w", dir, err)
		}
		var keep uint64
		for _, c := range cfgs {
			keep = max(keep, c.minFree(total))
		}
		if free >= keep && free-keep >= uint64(need) {
			return true, nil
		}
		old := r.idx.oldestUnder(root)
		if old == nil {
			return false, fmt.Errorf("%w: %s free, %s to keep free (recordMinFreeBytes)", ErrDiskFull,
				formatBytes(int64(free)), formatBytes(int64(keep)))
		}
		if err := r.delete(old, reasonMinFree); err != nil {
			return false, err
		}
	}
}

// delete removes a segment's file and forgets it.
func (r *Recorder) delete(s *segment, reason string) error {
	if err := os.Remove(s.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", s.file, err)
	}
	r.idx.mu.Lock()
	size := s.size
	r.idx.mu.Unlock()
	r.idx.remove(s)
	r.log.Debug().Str("path", s.name).Str("file", s.file).Str("reason", reason).Msg("segment deleted")
	r.ev.deletedSegment(s.name, reason, size)
	// Directories the pattern made (a day's) go when they are empty.
	for dir := filepath.Dir(s.file); len(dir) > len(s.root) && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// retain applies recordDeleteAfter and recordMaxBytes to every path with
// recordings, and recordMinFreeBytes to every directory they are under
// (other programs may fill the volume while no part is written).
func (r *Recorder) retain() {
	now := r.o.Now()
	roots := map[string][]PathConfig{}
	for _, name := range r.idx.names() {
		r.mu.Lock()
		cfg, _ := r.configForLocked(name)
		r.mu.Unlock()
		r.roomMu.Lock()
		if cfg.DeleteAfter > 0 {
			for _, s := range r.idx.expired(name, now.Add(-cfg.DeleteAfter)) {
				if err := r.delete(s, reasonAge); err != nil {
					r.report(name, EventError, err.Error())
				}
			}
		}
		if _, err := r.trimLocked(name, cfg.MaxBytes, 0); err != nil {
			r.report(name, EventError, err.Error())
		}
		r.roomMu.Unlock()
		if vs := r.idx.view(name); len(vs) > 0 {
			root := vs[0].s.root
			roots[root] = append(roots[root], cfg)
		}
	}
	if r.o.DiskUsage == nil {
		return
	}
	for root, cfgs := range roots {
		r.roomMu.Lock()
		if _, err := r.keepFreeLocked(root, root, cfgs, 0); err != nil && !errors.Is(err, ErrDiskFull) {
			r.log.Warn().Err(err).Str("dir", root).Msg("free space check")
		}
		r.roomMu.Unlock()
	}
}

// patterns are the distinct recordPaths of the entries and the defaults.
func (r *Recorder) patterns() []*pattern {
	r.mu.Lock()
	raws := map[string]bool{r.o.Defaults.withDefaults().Pattern: true}
	for _, c := range r.entries {
		raws[c.Pattern] = true
	}
	r.mu.Unlock()
	var out []*pattern
	for raw := range raws {
		if p, err := parsePattern(raw); err == nil {
			out = append(out, p.under(r.base))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].raw < out[j].raw })
	return out
}

// rescan reads the recording directories: new files are indexed (and, at
// start, repaired when a crash left them open), vanished ones forgotten.
func (r *Recorder) rescan(start bool) {
	pats := r.patterns()
	type mp struct {
		p *pattern
		m *matcher
	}
	byRoot := map[string][]mp{}
	for _, p := range pats {
		byRoot[p.root()] = append(byRoot[p.root()], mp{p, p.matcher()})
	}
	seen := map[string]bool{}
	for root, ms := range byRoot {
		_ = filepath.WalkDir(root, func(file string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(file, ext) {
				return nil
			}
			for _, m := range ms {
				name, startAt, perr := m.m.parse(file)
				if perr != nil || guard.ValidatePathName(name) != nil {
					continue
				}
				seen[file] = true
				r.indexFile(file, name, root, startAt, start)
				return nil
			}
			return nil
		})
	}
	// Files gone from disk (deleted by hand) leave the index.
	for _, name := range r.idx.names() {
		for _, v := range r.idx.view(name) {
			if !v.open && !seen[v.file] {
				if _, err := os.Stat(v.file); errors.Is(err, fs.ErrNotExist) {
					r.idx.remove(v.s)
				}
			}
		}
	}
}

// indexFile reads one segment's header into the index.
func (r *Recorder) indexFile(file, name, root string, start time.Time, repair bool) {
	info, err := os.Stat(file)
	if err != nil {
		return
	}
	if s, ok := r.idx.lookup(file); ok {
		r.idx.mu.Lock()
		same := s.open || s.size == info.Size()
		r.idx.mu.Unlock()
		if same {
			return
		}
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		f, err = os.Open(file)
		if err != nil {
			return
		}
	}
	defer f.Close()
	h, err := readHeader(f)
	if err != nil {
		if info.Size() < 64<<10 && repair {
			// A segment whose init was never completely written (a
			// crash right after its creation): nothing to play.
			r.log.Info().Str("file", file).Msg("removing a segment that has no complete header")
			_ = os.Remove(file)
			return
		}
		r.log.Debug().Str("file", file).Err(err).Msg("not a segment")
		return
	}
	size, dur := info.Size(), h.duration
	if dur == 0 {
		// Never closed: the recorder stopped while writing it. It is
		// cut after its last complete part and given its duration.
		var end time.Duration
		parts := 0
		stop, _ := scanParts(f, h.size, func(p partInfo) bool {
			end = partsEnd(h.init, p, end)
			parts++
			return true
		})
		if parts == 0 {
			if repair {
				r.log.Info().Str("file", file).Msg("removing a segment without a complete part")
				_ = os.Remove(file)
			}
			return
		}
		if repair {
			if stop < size {
				if err := f.Truncate(stop); err == nil {
					size = stop
				}
			}
			if h.durs.write(f, end) == nil {
				_ = f.Sync()
			}
			r.log.Info().Str("file", file).Dur("duration", end).Int("parts", parts).Msg("segment left open by a stop repaired")
		}
		dur = end
	}
	r.idx.add(&segment{name: name, file: file, root: root, start: start, sig: trackSig(h.init), dur: dur, size: size})
}

// Status is a path's recording, for health.
type Status struct {
	Name string `json:"name"`
	// Record is whether the path is to be recorded (config or path.record).
	Record bool `json:"record"`
	// State is off, waiting (for a stream) or recording.
	State     string    `json:"state"`
	Bytes     int64     `json:"bytes"`
	Segments  int       `json:"segments"`
	Oldest    time.Time `json:"oldest,omitzero"`
	Written   uint64    `json:"written"` // bytes written since the start
	LastError string    `json:"lastError,omitempty"`
}

// Status returns one path's recording; ok is false when the path neither
// records nor has recordings.
func (r *Recorder) Status(name string) (Status, bool) {
	u := r.idx.usage(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.recordsLocked(name)
	st := r.status[name]
	if !rec && u.segments == 0 && st == nil {
		return Status{}, false
	}
	s := Status{Name: name, Record: rec, State: "off", Bytes: u.bytes, Segments: u.segments, Oldest: u.oldest}
	if rec {
		s.State = "waiting"
	}
	if st != nil {
		if st.recording > 0 {
			s.State = "recording"
		}
		s.Written = st.written.Load()
		s.LastError = st.lastErr
	}
	return s, true
}

// Statuses returns the recording of every path that records or has
// recordings, by name.
func (r *Recorder) Statuses() []Status {
	names := map[string]bool{}
	for _, n := range r.idx.names() {
		names[n] = true
	}
	r.mu.Lock()
	for n := range r.status {
		names[n] = true
	}
	for n := range r.entries {
		if isEntry(n) && r.recordsLocked(n) {
			names[n] = true
		}
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(names))
	for n := range names {
		if s, ok := r.Status(n); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Spans lists the recorded stretches of a path, contiguous segments
// merged; ErrNoRecordings when there is none.
func (r *Recorder) Spans(name string) ([]Span, error) {
	out := spans(r.idx.view(name))
	if len(out) == 0 {
		return nil, fmt.Errorf("%w for %q", ErrNoRecordings, name)
	}
	return out, nil
}
