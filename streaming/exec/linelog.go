package exec

import (
	"bytes"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/camgate/camgate/internal/redact"
)

// maxLine is the longest output line logged; the rest of a longer one is
// cut (a binary stream written to stdout by mistake, a progress line
// without end).
const maxLine = 1024

// lineLog writes a command's output to the log line by line. A line ended
// by "\r" alone is a progress line (ffmpeg's "frame= ... speed=1x") and
// goes to debug; others go to info. Lines are redacted (a camera URL in an
// ffmpeg message) and bounded in length and rate.
type lineLog struct {
	log zerolog.Logger
	lim *rate.Limiter

	mu         sync.Mutex
	buf        []byte
	cut        int // bytes dropped from the line being collected
	suppressed int // lines over the rate since the last one logged
}

func newLineLog(log zerolog.Logger, lim *rate.Limiter) *lineLog {
	return &lineLog{log: log, lim: lim}
}

// Write implements io.Writer; it never fails.
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			l.add(p)
			break
		}
		l.add(p[:i])
		progress := p[i] == '\r' && (i+1 >= len(p) || p[i+1] != '\n')
		if p[i] == '\r' && !progress {
			i++ // "\r\n"
		}
		l.emit(progress)
		p = p[i+1:]
	}
	return n, nil
}

// Flush logs a last line without its end.
func (l *lineLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.emit(false)
}

func (l *lineLog) add(b []byte) {
	room := maxLine - len(l.buf)
	if room < len(b) {
		l.cut += len(b) - max(room, 0)
		b = b[:max(room, 0)]
	}
	l.buf = append(l.buf, b...)
}

func (l *lineLog) emit(progress bool) {
	line, cut := bytes.TrimSpace(l.buf), l.cut
	l.buf, l.cut = l.buf[:0], 0
	if len(line) == 0 {
		return
	}
	ev := l.log.Info()
	if progress {
		ev = l.log.Debug()
	}
	if !ev.Enabled() {
		return // progress lines at info level: not logged, not counted
	}
	if !l.lim.Allow() {
		ev.Discard()
		l.suppressed++
		return
	}
	if cut > 0 {
		ev = ev.Int("bytesCut", cut)
	}
	if l.suppressed > 0 {
		ev = ev.Int("linesSuppressed", l.suppressed)
		l.suppressed = 0
	}
	ev.Str("output", redact.String(string(line))).Msg("command output")
}
