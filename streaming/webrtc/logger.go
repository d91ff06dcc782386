package webrtc

import (
	"fmt"

	"github.com/pion/logging"
	"github.com/rs/zerolog"
)

// pionLoggerFactory bridges pion's loggers to zerolog, one level down:
// pion warns about routine events of every session (a ping before the
// first candidate pair, a read on a closed stream at teardown, a mux on an
// unspecified address, which is camgate's design), which would flood an
// agent's log at info. pion's errors become warnings.
type pionLoggerFactory struct {
	log zerolog.Logger
}

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With().Str("pion", scope).Logger()}
}

type pionLogger struct {
	log zerolog.Logger
}

func (l pionLogger) msgf(e *zerolog.Event, format string, args []any) {
	if e.Enabled() {
		e.Msg(fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.msgf(l.log.Trace(), format, args) }
func (l pionLogger) Debug(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.msgf(l.log.Trace(), format, args) }
func (l pionLogger) Info(msg string)                   { l.log.Debug().Msg(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.msgf(l.log.Debug(), format, args) }
func (l pionLogger) Warn(msg string)                   { l.log.Debug().Msg(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.msgf(l.log.Debug(), format, args) }
func (l pionLogger) Error(msg string)                  { l.log.Warn().Msg(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.msgf(l.log.Warn(), format, args) }
