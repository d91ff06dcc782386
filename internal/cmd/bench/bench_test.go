package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-readers", "1, 5,20", "-multi", "2x3", "-window", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.readers) != 3 || o.readers[2] != 20 || o.multiCams != 2 || o.multiRdrs != 3 || o.window != 2*time.Second {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{
		{"-readers", "10,1"}, {"-readers", "0"}, {"-readers", "x"},
		{"-multi", "16"}, {"-multi", "ax4"}, {"-window", "0s"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	ticks, err := cpuTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU: utime+stime must not go backwards, and this
	// process has used some CPU by now (building the test binary's init).
	for i := 0; i < 1e7; i++ {
		_ = i * i
	}
	ticks2, err := cpuTicks(pid)
	if err != nil || ticks2 < ticks {
		t.Errorf("cpuTicks went from %d to %d (%v)", ticks, ticks2, err)
	}
	rss, err := readRSS(pid)
	if err != nil || rss < 1<<20 || rss > 1<<34 {
		t.Errorf("readRSS = %d, %v", rss, err)
	}
	if _, err := cpuTicks(-1); err == nil {
		t.Error("cpuTicks of no process succeeded")
	}
}

func TestMedianAndVerdict(t *testing.T) {
	ms := time.Millisecond
	if m := median([]time.Duration{5 * ms, 1 * ms, 3 * ms}); m != 3*ms {
		t.Errorf("odd median %v", m)
	}
	if m := median([]time.Duration{4 * ms, 1 * ms, 2 * ms, 3 * ms}); m != 2500*time.Microsecond {
		t.Errorf("even median %v", m)
	}
	if median(nil) != 0 {
		t.Error("median of nothing")
	}
	if v := verdict(14, 14, "MB"); v != "met" {
		t.Errorf("at the limit: %q", v)
	}
	if v := verdict(15, 14, "MB"); !strings.Contains(v, "missed") || !strings.Contains(v, "1.00 MB") {
		t.Errorf("just over: %q", v)
	}
	if v := verdict(26, 2.6, "%"); !strings.Contains(v, "10.0×") {
		t.Errorf("far over: %q", v)
	}
}

func TestReplaceSection(t *testing.T) {
	f := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(f, []byte("# head\n"+beginMarker+"\nold\n"+endMarker+"\ntail\n"), 0o644)
	if err := replaceSection(f, "new table"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if got := string(b); got != "# head\n"+beginMarker+"\nnew table\n"+endMarker+"\ntail\n" {
		t.Errorf("got %q", got)
	}
	os.WriteFile(f, []byte("no markers"), 0o644)
	if err := replaceSection(f, "x"); err == nil {
		t.Error("a file without markers was accepted")
	}
}

func TestReportMarkdown(t *testing.T) {
	o, _ := parseFlags(nil)
	r := report{
		start: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), machine: "m", commit: "abc",
		idle:      result{rssEnd: 10e6, rssPeak: 10e6},
		idleBench: result{rssEnd: 10e6},
		fanout:    []fanoutResult{{readers: 50, sample: result{cpuPct: 5.2, rssEnd: 30e6, readers: 50, keepingUp: 49, dropped: 3}}},
		rssAfter:  11e6,
		coldAgent: []time.Duration{30 * time.Millisecond}, coldDirect: []time.Duration{5 * time.Millisecond},
		warmAgent: []time.Duration{4 * time.Millisecond}, warmDirect: []time.Duration{time.Second},
	}
	md := r.markdown(o)
	for _, want := range []string{
		"### Run of 2026-01-02 03:04 UTC",
		"| 1 camera → 50 reader(s) | 5.20 % | 30.0 MB",
		"**readers fell behind**",
		"49/50",
		"within 20 % of idle | met",
		"≤ direct + 20 ms | **missed** by 5.00 ms",
		"< 150 ms | met",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
