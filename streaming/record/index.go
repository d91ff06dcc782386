package record

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// concatTolerance is the largest gap (or overlap) between the end of a
// segment and the start of the next for both to count as one span: the
// names hold microseconds and segments of one recording touch exactly,
// while a recording that stopped and started again leaves a gap of at
// least a keyframe interval.
const concatTolerance = time.Second

// segment is one file of the index.
type segment struct {
	name  string
	file  string
	root  string // the pattern's root: the paths sharing it share free space
	start time.Time
	sig   string // the tracks, for telling which segments can be joined

	// Guarded by index.mu.
	dur  time.Duration
	size int64
	open bool // being written: never deleted, repaired or rescanned
	// readers of the file (playback); Windows cannot delete an open file,
	// and elsewhere deleting it would not free its space before they end.
	busy int
}

func (s *segment) end() time.Time { return s.start.Add(s.dur) }

// trackSig describes an init's tracks: ids, codecs, timescales and
// parameters. Segments join into one span only when it is the same: a
// player of the span is given the first segment's init.
func trackSig(init *fmp4.Init) string {
	var b strings.Builder
	for _, t := range init.Tracks {
		b.WriteString(strconv.Itoa(t.ID) + ":" + codecName(t.Codec) + "/" + strconv.FormatUint(uint64(t.TimeScale), 10))
		b.WriteString("/" + strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(fmt.Sprintf("%+v", t.Codec)))), 16) + ";")
	}
	return b.String()
}

func codecName(c mp4.Codec) string {
	switch c.(type) {
	case *mp4.CodecH264:
		return "H264"
	case *mp4.CodecH265:
		return "H265"
	case *mp4.CodecMPEG4Audio:
		return "AAC"
	case *mp4.CodecOpus:
		return "Opus"
	case *mp4.CodecLPCM:
		return "LPCM"
	}
	return "other"
}

// index is every segment the recorder knows of, by path name.
type index struct {
	mu     sync.Mutex
	byName map[string][]*segment // sorted by start
	files  map[string]*segment
}

func newIndex() *index {
	return &index{byName: map[string][]*segment{}, files: map[string]*segment{}}
}

// add inserts s; a segment of the same file replaces the old entry.
func (x *index) add(s *segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.files[s.file]; ok {
		x.removeLocked(old)
	}
	x.files[s.file] = s
	list := x.byName[s.name]
	i := sort.Search(len(list), func(i int) bool { return list[i].start.After(s.start) })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = s
	x.byName[s.name] = list
}

func (x *index) remove(s *segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(s)
}

func (x *index) removeLocked(s *segment) {
	if x.files[s.file] != s {
		return
	}
	delete(x.files, s.file)
	list := x.byName[s.name]
	for i, t := range list {
		if t == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(x.byName, s.name)
	} else {
		x.byName[s.name] = list
	}
}

// set updates a segment's figures.
func (x *index) set(s *segment, size int64, dur time.Duration, open bool) {
	x.mu.Lock()
	s.size, s.dur, s.open = size, dur, open
	x.mu.Unlock()
}

// lookup returns the segment of a file, if indexed.
func (x *index) lookup(file string) (*segment, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s, ok := x.files[file]
	return s, ok
}

// segView is a copy of a segment's figures, for readers outside the lock.
type segView struct {
	s     *segment
	file  string
	start time.Time
	dur   time.Duration
	size  int64
	sig   string
	open  bool
}

func (v segView) end() time.Time { return v.start.Add(v.dur) }

func (x *index) view(name string) []segView {
	x.mu.Lock()
	defer x.mu.Unlock()
	list := x.byName[name]
	out := make([]segView, len(list))
	for i, s := range list {
		out[i] = segView{s: s, file: s.file, start: s.start, dur: s.dur, size: s.size, sig: s.sig, open: s.open}
	}
	return out
}

// names lists the paths with segments.
func (x *index) names() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]string, 0, len(x.byName))
	for n := range x.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// usage sums a path's segments.
type usage struct {
	bytes    int64
	segments int
	oldest   time.Time
}

func (x *index) usage(name string) usage {
	x.mu.Lock()
	defer x.mu.Unlock()
	var u usage
	for _, s := range x.byName[name] {
		u.bytes += s.size
		u.segments++
	}
	if list := x.byName[name]; len(list) > 0 {
		u.oldest = list[0].start
	}
	return u
}

// deletable reports whether retention may take s now; x.mu is held.
func deletable(s *segment) bool { return !s.open && s.busy == 0 }

// oldestOf returns the path's oldest deletable segment.
func (x *index) oldestOf(name string) *segment {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.byName[name] {
		if deletable(s) {
			return s
		}
	}
	return nil
}

// oldestUnder returns the oldest deletable segment of any path under root.
func (x *index) oldestUnder(root string) *segment {
	x.mu.Lock()
	defer x.mu.Unlock()
	var best *segment
	for _, list := range x.byName {
		for _, s := range list {
			if s.root != root || !deletable(s) {
				continue
			}
			if best == nil || s.start.Before(best.start) {
				best = s
			}
			break // lists are sorted: the first one that qualifies is the path's oldest
		}
	}
	return best
}

// expired returns the path's deletable segments that ended before t.
func (x *index) expired(name string, t time.Time) []*segment {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []*segment
	for _, s := range x.byName[name] {
		if deletable(s) && s.end().Before(t) {
			out = append(out, s)
		}
	}
	return out
}

// acquire marks segments as being read; release undoes it.
func (x *index) acquire(vs []segView) {
	x.mu.Lock()
	for _, v := range vs {
		v.s.busy++
	}
	x.mu.Unlock()
}

func (x *index) release(vs []segView) {
	x.mu.Lock()
	for _, v := range vs {
		v.s.busy--
	}
	x.mu.Unlock()
}

// Span is a stretch of recording without gaps: what GET /list returns.
type Span struct {
	Start    time.Time
	Duration time.Duration
}

// MarshalJSON writes MediaMTX's form: start in RFC 3339, duration in seconds.
func (s Span) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Start    string  `json:"start"`
		Duration float64 `json:"duration"`
	}{s.Start.UTC().Format(time.RFC3339Nano), s.Duration.Seconds()})
}

// joinable reports whether next continues the recording of prev.
func joinable(prev, next segView) bool {
	gap := next.start.Sub(prev.end())
	return prev.sig == next.sig && gap <= concatTolerance && gap >= -concatTolerance
}

// spans merges contiguous segments.
func spans(vs []segView) []Span {
	out := []Span{}
	var prev segView
	for i, v := range vs {
		if v.dur <= 0 {
			continue
		}
		if i > 0 && len(out) > 0 && joinable(prev, v) {
			last := &out[len(out)-1]
			if e := v.end(); e.After(last.Start.Add(last.Duration)) {
				last.Duration = e.Sub(last.Start)
			}
		} else {
			out = append(out, Span{Start: v.start, Duration: v.dur})
		}
		prev = v
	}
	return out
}
