package exec

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming"
)

// Process is one started command: hal.ProcessTree.
type Process interface {
	Pid() int
	Exited() <-chan struct{}
	Err() error
	Stop(grace time.Duration)
}

// Options configure a Runner. Zero values take the stated defaults.
type Options struct {
	// RTSPPort is RTSP_PORT for the commands: the port of rtsp.address.
	RTSPPort string
	// Start starts one run of a command; default hal.StartProcessTree.
	Start func(hal.ProcessSpec) (Process, error)
	// RestartPause is the wait before a command that exited is started
	// again; default 5 s, MediaMTX's.
	RestartPause time.Duration
	// StopGrace is how long a command and its children have to exit after
	// SIGTERM before SIGKILL; default 2 s (the agent's whole shutdown has
	// 5 s).
	StopGrace time.Duration
	// LinesPerSecond bounds the log lines of one command's output, with
	// bursts of ten times as many; default 20. Lines over it are counted
	// and the count is logged with the next line that passes.
	LinesPerSecond float64
	Log            zerolog.Logger
}

// Runner runs path commands. It is safe for concurrent use.
type Runner struct {
	opts Options
	log  zerolog.Logger
}

// New returns a Runner.
func New(o Options) *Runner {
	if o.Start == nil {
		o.Start = func(s hal.ProcessSpec) (Process, error) {
			pt, err := hal.StartProcessTree(s)
			if err != nil {
				return nil, err
			}
			return pt, nil
		}
	}
	if o.RestartPause <= 0 {
		o.RestartPause = 5 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.LinesPerSecond <= 0 {
		o.LinesPerSecond = 20
	}
	return &Runner{opts: o, log: o.Log.With().Str("component", "exec").Logger()}
}

// Vars are the environment MediaMTX gives a path command: MTX_PATH,
// RTSP_PATH (its older name), RTSP_PORT, and c.Vars (G1..., MTX_QUERY).
func (r *Runner) Vars(c streaming.Command) map[string]string {
	v := map[string]string{"MTX_PATH": c.Path, "RTSP_PATH": c.Path, "RTSP_PORT": r.opts.RTSPPort}
	for k, x := range c.Vars {
		v[k] = x
	}
	return v
}

// Run implements streaming.CommandRunner.
func (r *Runner) Run(ctx context.Context, c streaming.Command) error {
	log := r.log.With().Str("path", c.Path).Str("hook", c.Hook).Logger()
	out := newLineLog(log, rate.NewLimiter(rate.Limit(r.opts.LinesPerSecond), int(10*r.opts.LinesPerSecond)))
	spec := hal.ProcessSpec{Line: c.Line, Vars: r.Vars(c), Output: out}
	for {
		err := r.once(ctx, log, spec, out)
		if ctx.Err() != nil {
			return nil
		}
		if !c.Restart {
			return err
		}
		log.Info().Dur("restartIn", r.opts.RestartPause).Msg("command will be started again")
		t := time.NewTimer(r.opts.RestartPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// once runs the command until it exits or ctx ends; either way its whole
// tree is stopped before it returns.
func (r *Runner) once(ctx context.Context, log zerolog.Logger, spec hal.ProcessSpec, out *lineLog) error {
	p, err := r.opts.Start(spec)
	if err != nil {
		log.Error().Str("command", redact.String(spec.Line)).Str("error", redact.Error(err)).Msg("command did not start")
		return err
	}
	log.Info().Int("pid", p.Pid()).Str("command", redact.String(spec.Line)).Msg("command started")
	select {
	case <-ctx.Done():
		p.Stop(r.opts.StopGrace)
		out.Flush()
		log.Info().Int("pid", p.Pid()).Msg("command stopped")
		return nil
	case <-p.Exited():
	}
	err = p.Err()
	p.Stop(r.opts.StopGrace) // what it started may live on
	out.Flush()
	if err == nil {
		log.Warn().Int("pid", p.Pid()).Msg("command exited")
		return errors.New("command exited with code 0")
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	log.Warn().Int("pid", p.Pid()).Int("exitCode", code).Str("error", redact.Error(err)).Msg("command exited")
	return fmt.Errorf("command exited: %w", err)
}
