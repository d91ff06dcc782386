// Package log builds the agent's zerolog logger: console or JSON, a level,
// and optionally a size-rotated file. Components take a child logger with
// a "component" field; nothing here is global.
//
// Every line passes through redact.JSON before it is formatted or
// written: components redact what they log, and a URL or peer error that
// slipped through unredacted is masked here all the same.
package log

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/camgate/camgate/internal/redact"
)

// Options configure New. Zero values give info level console output on stderr.
type Options struct {
	Level  string // debug|info|warn|error; default info
	Format string // console|json; default console
	File   string // when set, logs also go to this file, rotated by size
	// MaxSizeMB is the size at which File is rotated; default 10.
	MaxSizeMB int
	// MaxBackups is the number of rotated files kept; default 5.
	MaxBackups int
	// Stderr is where logs go besides File; default os.Stderr.
	Stderr io.Writer
}

// New returns a logger and a closer for the log file (a no-op without one).
//
// Duration fields are written as Go durations ("950ms", "2m0s"): zerolog's
// default is a bare float of milliseconds, which reads as seconds or as
// nothing at all. zerolog keeps this format in a package variable; New is
// the one place camgate sets it.
func New(o Options) (zerolog.Logger, io.Closer, error) {
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
	lvl := zerolog.InfoLevel
	if o.Level != "" {
		var err error
		lvl, err = zerolog.ParseLevel(o.Level)
		if err != nil {
			return zerolog.Nop(), nopCloser{}, fmt.Errorf("log level %q: %w", o.Level, err)
		}
	}
	out := o.Stderr
	if out == nil {
		out = os.Stderr
	}
	var w io.Writer = out
	if o.Format != "json" {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: time.DateTime, NoColor: !isTerminal(out)}
	}
	var closer io.Closer = nopCloser{}
	if o.File != "" {
		lj := &lumberjack.Logger{
			Filename:   o.File,
			MaxSize:    orDefault(o.MaxSizeMB, 10),
			MaxBackups: orDefault(o.MaxBackups, 5),
		}
		closer = lj
		var fw io.Writer = lj
		if o.Format != "json" {
			fw = zerolog.ConsoleWriter{Out: lj, TimeFormat: time.RFC3339, NoColor: true}
		}
		w = zerolog.MultiLevelWriter(w, fw)
	}
	return zerolog.New(Redacting(w)).Level(lvl).With().Timestamp().Logger(), closer, nil
}

// Redacting returns a writer for zerolog that masks secrets in each JSON
// line (zerolog writes one event per Write) before passing it to w.
func Redacting(w io.Writer) io.Writer { return redactWriter{w} }

type redactWriter struct{ w io.Writer }

func (r redactWriter) Write(p []byte) (int, error) {
	if _, err := r.w.Write(redact.JSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
