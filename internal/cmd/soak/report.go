package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/camgate/camgate/internal/interop"
)

// report is what a run found.
type report struct {
	o        options
	start    time.Time
	loadTook time.Duration
	command  string
	machine  string
	commit   string
	samples  []sample
	counters counterSnapshot
	checks   []check
	trends   []trend
}

type check struct {
	name   string
	ok     bool
	detail string
}

func (r *report) check(name string, ok bool, detail string) {
	r.checks = append(r.checks, check{name: name, ok: ok, detail: detail})
}

// trend is one figure's fit over the samples after the warm-up.
type trend struct {
	name, unit string
	tol        float64 // tolerated growth per hour
	// floor is the growth over the judged span that is tolerated however
	// short the run: a few minutes of warm-up (the heap finding its size,
	// a camera's first pull, readers that happen to be on at the end) moves
	// a figure this much with no leak behind it, and extrapolated to an
	// hour that would read as one.
	floor float64
	span  float64 // hours from the first judged sample to the last
	fit
	first, last, lo, hi float64
}

// allowed is the tolerated growth per hour over this run: tol, or floor
// spread over the span when that is more.
func (t trend) allowed() float64 {
	if t.span > 0 {
		return max(t.tol, t.floor/t.span)
	}
	return t.tol
}

// ok: the growth is within the tolerance unless even its lower bound
// (slope less two standard errors) is above it, so noise in a short run
// does not fail it and a steady leak in a long one does.
func (t trend) ok() bool { return t.n >= 3 && t.slope-2*t.se <= t.allowed() }

// judge fits every figure's trend after the warm-up.
func (r *report) judge() {
	// The floors: what one reader, one camera pull or one broker drop
	// moves a figure by (each reader and pull holds a few goroutines, a
	// socket or two and its buffers; a drop queues a few messages), with
	// room for the heap to settle. A leak that is real outgrows them
	// within minutes, and in an hour-long run the per-hour tolerances are
	// the larger bound.
	figures := []struct {
		name, unit string
		tol, floor float64
		get        func(sample) float64
	}{
		// Anonymous memory is what a leak grows; the file-backed part
		// (camgate.db's map) follows the file, reported beside it.
		{"RSS anonymous", "MB", r.o.tolRSS, 1.5, func(s sample) float64 { return s.anonMB }},
		{"RSS file-backed", "MB", r.o.tolRSSFile, 4, func(s sample) float64 { return s.fileMB }},
		{"camgate.db size", "MB", r.o.tolRSSFile, 4, func(s sample) float64 { return s.dbMB }},
		{"Go heap", "MB", r.o.tolHeap, 1.5, func(s sample) float64 { return s.heapMB }},
		{"goroutines", "", r.o.tolGoroutines, 20, func(s sample) float64 { return s.goroutines }},
		{"open fds", "", r.o.tolFDs, 10, func(s sample) float64 { return s.fds }},
		{"outbox depth", "msgs", r.o.tolOutbox, 50, func(s sample) float64 { return s.outbox }},
	}
	for _, f := range figures {
		var xs, ys []float64
		for _, s := range r.samples {
			if s.at >= r.o.warmup {
				xs = append(xs, s.at.Hours())
				ys = append(ys, f.get(s))
			}
		}
		t := trend{name: f.name, unit: f.unit, tol: f.tol, floor: f.floor, fit: fitLine(xs, ys), first: math.NaN(), last: math.NaN(), lo: math.NaN(), hi: math.NaN()}
		if len(xs) > 1 {
			t.span = xs[len(xs)-1] - xs[0]
		}
		for _, y := range ys {
			if math.IsNaN(y) {
				continue
			}
			if math.IsNaN(t.first) {
				t.first, t.lo, t.hi = y, y, y
			}
			t.last, t.lo, t.hi = y, min(t.lo, y), max(t.hi, y)
		}
		r.trends = append(r.trends, t)
	}
}

// failures names every failed check and trend.
func (r *report) failures() []string {
	var out []string
	for _, c := range r.checks {
		if !c.ok {
			out = append(out, c.name)
		}
	}
	for _, t := range r.trends {
		if !t.ok() {
			out = append(out, fmt.Sprintf("%s grows (%s ± %s per hour, %s tolerated)", t.name, num(t.slope, 1), num(t.se, 1), num(t.allowed(), 1)))
		}
	}
	return out
}

// fit is a least-squares line y = a + slope*x.
type fit struct {
	n         int     // points used (NaN skipped)
	slope, se float64 // per unit of x; se is the slope's standard error
}

func fitLine(xs, ys []float64) fit {
	var x, y []float64
	for i := range xs {
		if !math.IsNaN(ys[i]) {
			x, y = append(x, xs[i]), append(y, ys[i])
		}
	}
	n := len(x)
	if n < 2 {
		return fit{n: n, slope: math.NaN(), se: math.NaN()}
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return fit{n: n, slope: math.NaN(), se: math.NaN()}
	}
	b := sxy / sxx
	if n < 3 {
		return fit{n: n, slope: b, se: math.Inf(1)}
	}
	var ssr float64
	for i := range x {
		r := y[i] - (my + b*(x[i]-mx))
		ssr += r * r
	}
	return fit{n: n, slope: b, se: math.Sqrt(ssr / float64(n-2) / sxx)}
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "**FAIL**"
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func (r *report) markdown() string {
	var b strings.Builder
	c := r.counters
	fmt.Fprintf(&b, "### Soak: %v, %d cameras, %d readers\n\n", r.o.duration, r.o.cameras, r.o.readers)
	fmt.Fprintf(&b, "`%s` on %s, tree %s, seed %d, started %s.\n\n", r.command, r.machine, r.commit, r.o.seed, r.start.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Load over %v: cameras away %d times (1 s to %v each, mean gap %v per camera), the broker dropped the agent %d times (mean gap %v), "+
		"%d reader sessions over TCP and UDP (%d refused or cut, mostly by a camera away; %d RTP packets), "+
		"fleet commands every %v: %d ok, %d refused with an error reply, %d unanswered within 10 s.\n\n",
		r.loadTook.Round(time.Second), c.flaps, r.o.outageMax, r.o.flapEvery, c.drops, r.o.dropEvery,
		c.readerSessions, c.readerFailures, c.readerPackets, r.o.cmdEvery, c.cmdOK, c.cmdRefused, c.cmdUnanswered)

	fmt.Fprintf(&b, "Trends after a %v warm-up (least squares; fails when slope − 2 SE exceeds the tolerance, "+
		"which is the per-hour figure or, in a short run, the floor's growth over the judged span, whichever is more):\n\n", r.o.warmup)
	b.WriteString("| figure | first | last | min | max | slope per hour (± SE) | tolerance per hour (floor over the run) | |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, t := range r.trends {
		unit := ""
		if t.unit != "" {
			unit = " " + t.unit
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s ± %s%s | %s%s (%g%s) | %s |\n", t.name,
			num(t.first, 1), num(t.last, 1), num(t.lo, 1), num(t.hi, 1), num(t.slope, 1), num(t.se, 1), unit,
			num(t.allowed(), 0), unit, t.floor, unit, verdict(t.ok()))
	}
	b.WriteString("\nChecks:\n\n| check | | detail |\n|---|---|---|\n")
	for _, ch := range r.checks {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", ch.name, verdict(ch.ok), strings.ReplaceAll(ch.detail, "\n", " "))
	}
	b.WriteString("\nSamples:\n\n| t | RSS MB (anon/file) | db MB | heap MB | goroutines | fds | outbox | uplink | CPU % | readers | cmds ok/refused/unanswered | flaps | drops |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, s := range r.samples {
		fmt.Fprintf(&b, "| %v | %s (%s/%s) | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d/%d | %d | %d |\n", s.at.Round(time.Second),
			num(s.rssMB, 1), num(s.anonMB, 1), num(s.fileMB, 1), num(s.dbMB, 2), num(s.heapMB, 1), num(s.goroutines, 0), num(s.fds, 0), num(s.outbox, 0), num(s.connected, 0),
			num(s.cpuPct, 1), num(s.readers, 0), s.load.cmdOK, s.load.cmdRefused, s.load.cmdUnanswered, s.load.flaps, s.load.drops)
	}
	if f := r.failures(); len(f) > 0 {
		fmt.Fprintf(&b, "\n**FAILED**: %s\n", strings.Join(f, ", "))
	} else {
		b.WriteString("\nAll checks passed.\n")
	}
	return b.String()
}

func command() string {
	return strings.TrimSpace("go run ./internal/cmd/soak " + strings.Join(os.Args[1:], " "))
}

func machine() string   { return interop.Machine() }
func gitCommit() string { return interop.GitCommit() }
