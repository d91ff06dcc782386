package agent

import (
	"context"
	"errors"
	"time"

	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/uplink"
)

// errUpdateTrial is returned by Run when it stopped so that an update's
// candidate can be tried: the CLI's run loop runs update.RunTrial.
var errUpdateTrial = errors.New("stopped for an update's trial")

func (a *Agent) newUpdater() (*update.Updater, error) {
	keys, err := update.ParseKeys(a.cfg.Update.PublicKeys)
	if err != nil {
		return nil, err // conf validated them; not reached
	}
	return update.New(update.Options{
		DataDir:    a.dataDir,
		Keys:       keys,
		Version:    Version,
		ConfigFile: a.opts.ConfigFile,
		Events:     func(typ string, detail any) { a.link.events.emit(typ, "", detail) },
		Trial:      a.requestTrial,
		OnTrial:    a.opts.Trial != nil,
		Log:        a.log,
	})
}

// requestTrial stops the agent for the trial of c.
func (a *Agent) requestTrial(c update.Binary) {
	a.trialCand.Store(&c)
	a.requestRestart()
}

// confirmUpdate tells the updater once the agent has run for the trial
// timeout: a committed update that gets this far is not crash-looping.
func (a *Agent) confirmUpdate(ctx context.Context) error {
	t := time.NewTimer(a.cfg.Update.TrialTimeout.D())
	defer t.Stop()
	select {
	case <-t.C:
		a.update.Confirm()
	case <-ctx.Done():
	}
	return nil
}

// reportUpdate raises the outcome the last update left in its state.
func (a *Agent) reportUpdate() {
	r, err := update.TakeReport(a.dataDir)
	if err != nil {
		a.log.Warn().Err(err).Msg("read the last update's outcome")
		return
	}
	if r == nil {
		return
	}
	detail := map[string]any{"version": r.Version, "at": r.At}
	if r.From != "" {
		detail["from"] = r.From
	}
	if r.Reason != "" {
		detail["reason"] = r.Reason
	}
	a.link.events.emit(r.Event, "", detail)
}

// trialPoll is how often a candidate on trial checks its criteria: no
// single event says all of them hold.
const trialPoll = 200 * time.Millisecond

// runTrial is the candidate's side of a trial: it says healthy once the
// criteria hold, and stops the agent (stop) when the trial is over for
// it.
func (a *Agent) runTrial(ctx context.Context, stop context.CancelFunc) error {
	t := time.NewTicker(trialPoll)
	defer t.Stop()
	reported := false
	for {
		if !reported && a.trialHealthy() {
			if err := a.opts.Trial.Healthy(); err != nil {
				a.log.Error().Err(err).Msg("trial: report healthy")
			}
			a.log.Info().Msg("trial: healthy")
			reported = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.opts.Trial.Done():
			a.log.Info().Bool("committed", a.opts.Trial.Committed()).Msg("trial over: stopping")
			stop()
			return nil
		case <-t.C:
		}
	}
}

// trialHealthy holds when the listeners are up, the uplink is connected
// (when one is configured) and every always-on pull has started (ready,
// or retrying a camera that is down, which is not the new binary's
// fault).
func (a *Agent) trialHealthy() bool {
	select {
	case <-a.ready:
	default:
		return false
	}
	if c := a.link.client; c != nil && !c.Connected() {
		return false
	}
	for _, p := range a.paths.Paths() {
		if !p.OnDemand && p.Source != "publisher" && p.State == streaming.StateIdle {
			return false
		}
	}
	return true
}

// agentUpdate decodes and starts agent.update; the reply says whether
// it was accepted (see update.Updater.Start).
func (d *dispatcher) agentUpdate(_ context.Context, r *request) (any, error) {
	var req update.Request
	if err := decodeArgs(r.args, &req); err != nil {
		return nil, err
	}
	if d.update == nil {
		return nil, cmdErr(uplink.CodeInternal, "updates are not available here")
	}
	rep, err := d.update.Start(req)
	switch {
	case errors.Is(err, update.ErrInProgress):
		return nil, cmdErr(uplink.CodeConflict, "%s", err)
	case errors.Is(err, update.ErrBadRequest), errors.Is(err, update.ErrNoKeys):
		return nil, cmdErr(uplink.CodeBadRequest, "%s", err)
	case err != nil:
		return nil, err
	}
	return rep, nil
}
