package agent

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink/fleet"
)

// rolloutSaveEvery is how often a running rollout writes its document
// (and heartbeat); a resume takes over a rollout whose owner has not
// written for rolloutStale.
const (
	rolloutSaveEvery = 2 * time.Second
	rolloutStale     = 3 * rolloutSaveEvery
)

func (cl *fleetCLI) rollout(ctx context.Context, rest []string) int {
	if len(rest) > 0 && rest[0] == "status" {
		if len(rest) == 1 {
			return cl.rolloutList(ctx)
		}
		r, err := cl.c.LoadRollout(ctx, rest[1])
		if err != nil {
			return cl.fail(err)
		}
		cl.printRollout(cl.stdout, r, true)
		return 0
	}
	var r *fleet.Rollout
	if len(rest) > 0 && rest[0] == "resume" {
		if len(rest) != 2 {
			return cl.fail(fmt.Errorf("usage: rollout resume ID"))
		}
		var err error
		if r, err = cl.c.LoadRollout(ctx, rest[1]); err != nil {
			return cl.fail(err)
		}
		if *cl.f.maxFailures >= 0 {
			r.MaxFailures = *cl.f.maxFailures
		} else if r.State == fleet.RolloutHalted {
			return cl.fail(fmt.Errorf("rollout %s halted: %s; resume it with a higher -max-failures", r.ID, r.Reason))
		}
		if err := cl.c.TakeRollout(r, time.Now(), rolloutStale, *cl.f.force); err != nil {
			return cl.fail(err)
		}
	} else {
		ids := ""
		if len(rest) == 1 {
			ids = rest[0]
		}
		var err error
		if r, err = cl.newRollout(ctx, ids); err != nil {
			return cl.fail(err)
		}
	}
	live := cl.liveTable()
	final, err := cl.c.RunRollout(ctx, r, fleet.RolloutOptions{SaveEvery: rolloutSaveEvery, Changed: live})
	if err != nil {
		return cl.fail(err)
	}
	if !cl.terminal {
		cl.printRollout(cl.stdout, final, true)
	} else {
		cl.printFailed(cl.stdout, final)
	}
	switch final.State {
	case fleet.RolloutDone:
		return 0
	case fleet.RolloutHalted:
		fmt.Fprintf(cl.stderr, "camgate fleet: rollout %s halted: %s\n", final.ID, final.Reason)
		return 1
	}
	// Interrupted: it stays running, to be resumed.
	fmt.Fprintf(cl.stderr, "camgate fleet: rollout %s interrupted; continue it with: camgate fleet rollout resume %s\n", final.ID, final.ID)
	return 1
}

func (cl *fleetCLI) newRollout(ctx context.Context, ids string) (*fleet.Rollout, error) {
	f := cl.f
	sig := *f.sig
	if b, err := os.ReadFile(sig); err == nil {
		sig = string(b) // a .minisig file
	}
	if *f.url == "" || *f.sha256 == "" || sig == "" {
		return nil, fmt.Errorf("rollout needs -url, -sha256 and -sig")
	}
	t, err := f.target(ids)
	if err != nil {
		return nil, err
	}
	agents, err := cl.choose(ctx, ids, false)
	if err != nil {
		return nil, err
	}
	var targets, offline []string
	for _, a := range agents {
		if !a.Online() && !*f.includeOffline {
			offline = append(offline, a.ID)
			continue
		}
		targets = append(targets, a.ID)
	}
	if len(offline) > 0 {
		fmt.Fprintf(cl.stderr, "camgate fleet: %d offline agents left out (-include-offline keeps them): %s\n", len(offline), abbrev(offline, 10))
	}
	canary, err := canaryCount(*f.canary, len(targets))
	if err != nil {
		return nil, err
	}
	maxFailures := max(*f.maxFailures, 0)
	r, err := fleet.NewRollout(fleet.RolloutPlan{
		ID: *f.id, URL: *f.url, SHA256: *f.sha256, Signature: sig, Version: *f.version,
		Target: t.String(), Agents: targets, Canary: canary, Growth: *f.growth, MaxWave: *f.maxWave,
		MaxFailures: maxFailures, WaveTimeout: *f.waveTimeout,
	}, time.Now())
	if err != nil {
		return nil, err
	}
	if prev, err := cl.c.LoadRollout(ctx, r.ID); err == nil && prev.State != fleet.RolloutDone {
		return nil, fmt.Errorf("rollout %s exists (%s): resume it with: camgate fleet rollout resume %s", r.ID, prev.State, r.ID)
	}
	if err := cl.c.TakeRollout(r, time.Now(), rolloutStale, false); err != nil {
		return nil, err
	}
	fmt.Fprintf(cl.stderr, "camgate fleet: rollout %s of %s to %d agents, canary %d, max failures %d\n", r.ID, orDash(r.Version), len(targets), canary, maxFailures)
	return r, nil
}

// canaryCount reads -canary: a count, or a percentage of total rounded
// up (at least 1).
func canaryCount(s string, total int) (int, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 {
			return 0, fmt.Errorf("-canary %q: want a count or a percentage from 0 to 100", s)
		}
		return max(1, int(math.Ceil(float64(total)*v/100))), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("-canary %q: want a count or a percentage", s)
	}
	return n, nil
}

func abbrev(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}

// liveTable shows a running rollout: redrawn in place on a terminal,
// otherwise a line whenever a wave starts or ends.
func (cl *fleetCLI) liveTable() func(*fleet.Rollout) {
	lines := 0
	waves, ended := 0, 0
	return func(r *fleet.Rollout) {
		if cl.terminal {
			var b strings.Builder
			cl.printRollout(&b, r, false)
			if lines > 0 {
				fmt.Fprintf(cl.stderr, "\x1b[%dA\x1b[J", lines)
			}
			fmt.Fprint(cl.stderr, b.String())
			lines = strings.Count(b.String(), "\n")
			return
		}
		e := 0
		for _, w := range r.Waves {
			if w.EndedAt != nil {
				e++
			}
		}
		if len(r.Waves) == waves && e == ended {
			return
		}
		for i := ended; i < e; i++ {
			fmt.Fprintf(cl.stdout, "wave %d ended: %s\n", i+1, countString(r.WaveCounts(i)))
		}
		for i := waves; i < len(r.Waves); i++ {
			fmt.Fprintf(cl.stdout, "wave %d started: %d agents\n", i+1, r.Waves[i].Size)
		}
		waves, ended = len(r.Waves), e
	}
}

var rolloutColumns = []string{fleet.RolloutPending, fleet.RolloutSent, fleet.RolloutAccepted, fleet.RolloutCommitted, fleet.RolloutNoop, fleet.RolloutRolledBack, fleet.RolloutFailed, fleet.RolloutTimeout}

// printRollout writes the rollout's table (and with failed its failed
// agents).
func (cl *fleetCLI) printRollout(w io.Writer, r *fleet.Rollout, failed bool) {
	fmt.Fprintf(w, "rollout %s  %s  %s  %d agents (%s)  failures %d, at most %d\n", r.ID, orDash(r.Version), r.State, len(r.Agents), r.Target, r.Failures(), r.MaxFailures)
	if r.Reason != "" {
		fmt.Fprintf(w, "  %s\n", r.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "WAVE\tSIZE\t")
	for _, c := range rolloutColumns {
		fmt.Fprint(tw, strings.ToUpper(strings.ReplaceAll(c, "_", " "))+"\t")
	}
	fmt.Fprintln(tw, "STATE\t")
	for i, wv := range r.Waves {
		counts := r.WaveCounts(i)
		fmt.Fprintf(tw, "%d\t%d\t", i+1, wv.Size)
		for _, c := range rolloutColumns {
			fmt.Fprintf(tw, "%d\t", counts[c])
		}
		state := "running"
		if wv.EndedAt != nil {
			state = "ended " + wv.EndedAt.Sub(wv.StartedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t\n", state)
	}
	_ = tw.Flush()
	if failed {
		cl.printFailed(w, r)
	}
}

func (cl *fleetCLI) printFailed(w io.Writer, r *fleet.Rollout) {
	var ids []string
	for id, p := range r.Progress {
		if p.Failure() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for i, id := range ids {
		if i == 20 {
			fmt.Fprintf(w, "  ... and %d more failed agents\n", len(ids)-20)
			break
		}
		p := r.Progress[id]
		fmt.Fprintf(w, "  %s  %s  %s\n", id, p.State, oneLine(redact.String(p.Detail)))
	}
}

func (cl *fleetCLI) rolloutList(ctx context.Context) int {
	rs, err := cl.c.Rollouts(ctx)
	if err != nil {
		return cl.fail(err)
	}
	slices.SortFunc(rs, func(a, b *fleet.Rollout) int { return a.Created.Compare(b.Created) })
	tw := tabwriter.NewWriter(cl.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tVERSION\tTARGET\tAGENTS\tDONE\tFAILURES\tHEARTBEAT")
	for _, r := range rs {
		done := 0
		for _, p := range r.Progress {
			if p.Terminal() && !p.Failure() {
				done++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.State, orDash(r.Version), r.Target, len(r.Agents), done, r.Failures(), r.Heartbeat.Format(time.RFC3339))
	}
	_ = tw.Flush()
	return 0
}

// progressBar draws "label [####    ] n/total" on a terminal; elsewhere
// it does nothing.
type progressBar struct {
	w     io.Writer
	label string
	on    bool
	last  time.Time
	drawn bool
}

func (cl *fleetCLI) progress(label string, total int) *progressBar {
	return &progressBar{w: cl.stderr, label: label, on: cl.terminal && total > 0}
}

func (p *progressBar) set(n, total int) {
	if !p.on || (n < total && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last, p.drawn = time.Now(), true
	const width = 40
	fill := width * n / max(total, 1)
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d", p.label, strings.Repeat("#", fill), strings.Repeat(" ", width-fill), n, total)
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// isTerminal tells whether w is a terminal (progress bars and live tables
// go to terminals only).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func sortStrings(s []string) { slices.Sort(s) }
