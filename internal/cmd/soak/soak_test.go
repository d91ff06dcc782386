package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestFitLine(t *testing.T) {
	// y = 3 + 2x exactly: slope 2, no error.
	f := fitLine([]float64{0, 1, 2, 3}, []float64{3, 5, 7, 9})
	if f.n != 4 || math.Abs(f.slope-2) > 1e-9 || f.se > 1e-9 {
		t.Fatalf("exact line: %+v", f)
	}
	// NaN samples are skipped.
	f = fitLine([]float64{0, 1, 2, 3, 4}, []float64{1, math.NaN(), 1, 1, 1})
	if f.n != 4 || f.slope != 0 || f.se != 0 {
		t.Fatalf("flat line with a gap: %+v", f)
	}
	// Alternating noise around a flat line: slope near 0, a real SE.
	f = fitLine([]float64{0, 1, 2, 3, 4, 5}, []float64{10, 12, 10, 12, 10, 12})
	if math.Abs(f.slope) > 0.5 || f.se <= 0 {
		t.Fatalf("noise: %+v", f)
	}
	if f := fitLine([]float64{1, 1}, []float64{1, 2}); !math.IsNaN(f.slope) {
		t.Fatalf("no spread in x: %+v", f)
	}
}

func TestTrendVerdict(t *testing.T) {
	const tol = 10
	hours := func(n int, every time.Duration) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = (time.Duration(i) * every).Hours()
		}
		return xs
	}
	const floor = 20
	for _, c := range []struct {
		name string
		xs   []float64
		y    func(i int) float64
		ok   bool
	}{
		// A leak of 30 per hour sampled each minute for 50 minutes.
		{"steady leak", hours(50, time.Minute), func(i int) float64 { return 100 + 0.5*float64(i) }, false},
		// Flat with noise of ±5 around 100.
		{"flat noise", hours(50, time.Minute), func(i int) float64 { return 100 + 5*math.Sin(float64(i)*1.7) }, true},
		// Noise of ±8 over two minutes of 10 s samples: the slope is
		// uncertain, not a leak.
		{"short noisy run", hours(14, 10*time.Second), func(i int) float64 { return 100 + 8*math.Sin(float64(i)*2.1) }, true},
		{"too few samples", hours(2, time.Minute), func(i int) float64 { return 1 }, false},
		// Two minutes of warm-up drift, 6 in all: 180 per hour, and
		// certain (no noise), but within the floor of 20 over the run.
		{"short warm-up drift", hours(12, 10*time.Second), func(i int) float64 { return 100 + 0.5*float64(i) }, true},
		// The same two minutes growing by 4 per sample, 44 in all: a leak
		// no warm-up explains.
		{"short steep leak", hours(12, 10*time.Second), func(i int) float64 { return 100 + 4*float64(i) }, false},
		// An hour growing by 1 every 2 minutes: 30 per hour, 25 over the
		// judged 50 minutes, past the floor and past the hourly tolerance.
		{"long slow leak", hours(26, 2*time.Minute), func(i int) float64 { return 100 + float64(i) }, false},
	} {
		ys := make([]float64, len(c.xs))
		for i := range ys {
			ys[i] = c.y(i)
		}
		tr := trend{tol: tol, floor: floor, fit: fitLine(c.xs, ys)}
		if n := len(c.xs); n > 1 {
			tr.span = c.xs[n-1] - c.xs[0]
		}
		if tr.ok() != c.ok {
			t.Errorf("%s: ok = %v (slope %.1f ± %.1f), want %v", c.name, tr.ok(), tr.slope, tr.se, c.ok)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP camgate_path_readers Readers connected to the path.
# TYPE camgate_path_readers gauge
camgate_path_readers{path="cam0"} 2
camgate_path_readers{path="a b}"} 3
camgate_go_goroutines 57
camgate_outbox_depth 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["camgate_path_readers"] != 5 || m["camgate_go_goroutines"] != 57 || m["camgate_outbox_depth"] != 0 {
		t.Fatalf("parsed %v", m)
	}
	if _, err := parseMetrics(strings.NewReader("x{} notanumber\n")); err == nil {
		t.Fatal("bad value accepted")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-duration", "3m", "-interval", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	if o.warmup != 30*time.Second || o.seed == 0 {
		t.Fatalf("defaults: warmup %v seed %d", o.warmup, o.seed)
	}
	for _, bad := range [][]string{
		{"-duration", "1m", "-interval", "30s", "-warmup", "30s"}, // one sample after the warm-up
		{"-warmup", "2h"},
		{"-cameras", "0"},
		{"-outage-max", "10ms"},
		{"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
