package record

import (
	"strings"
	"testing"
	"time"
)

func TestPatternRoundTrip(t *testing.T) {
	at := time.Date(2026, 7, 8, 9, 10, 11, 123456789, time.UTC)
	for _, c := range []struct{ raw, name, file string }{
		{DefaultPattern, "cam1", "/data/recordings/cam1/2026-07-08_09-10-11-123456.mp4"},
		{"rec/%path/%Y/%m/%d/%H-%M-%S-%f", "site/door", "/data/rec/site/door/2026/07/08/09-10-11-123456.mp4"},
		{"/srv/%path_%s_%f", "cam", "/srv/cam_1783501811_123456.mp4"},
	} {
		p, err := parsePattern(c.raw)
		if err != nil {
			t.Fatalf("%s: %v", c.raw, err)
		}
		p = p.under("/data")
		file := p.file(c.name, at)
		if file != c.file {
			t.Errorf("%s: file %s, want %s", c.raw, file, c.file)
		}
		name, start, err := p.matcher().parse(file)
		if err != nil || name != c.name || !start.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("%s: parsed %q %s %v", c.raw, name, start, err)
		}
		if !strings.HasPrefix(file, p.root()+"/") {
			t.Errorf("%s: root %s does not hold %s", c.raw, p.root(), file)
		}
	}
}

func TestPatternRefused(t *testing.T) {
	for raw, want := range map[string]string{
		"rec/%Y-%m-%d_%H-%M-%S-%f":      "%path is missing",
		"rec/%path/%Y-%m-%d_%H-%M-%S":   "%f is missing",
		"rec/%path/%Y-%m-%d_%H-%M-%f":   "start time is incomplete",
		"rec/%path/%Y-%m-%d_%H-%M-%S%q": "unknown field",
		"rec/../%path/%s-%f":            "'..'",
	} {
		_, err := parsePattern(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
		if err := (PathConfig{Pattern: raw}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "recordPath: ") {
			t.Errorf("Validate %s: %v", raw, err)
		}
	}
	for c, key := range map[PathConfig]string{
		{SegmentDuration: 500 * time.Millisecond}:                     "recordSegmentDuration",
		{PartDuration: 10 * time.Millisecond}:                         "recordPartDuration",
		{SegmentDuration: time.Second, PartDuration: 2 * time.Second}: "recordPartDuration",
		{MaxBytes: 1000}: "recordMaxBytes",
	} {
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), key+": ") {
			t.Errorf("%+v: %v, want an error on %s", c, err, key)
		}
	}
}

func TestCoalescer(t *testing.T) {
	ev := &events{}
	c := newCoalescer(ev)
	for range 5 {
		c.report(EventError, "cam", "disk full")
	}
	c.report(EventError, "cam", "other")
	c.deletedSegment("cam", reasonMinFree, 1<<20)
	c.deletedSegment("cam", reasonMinFree, 1<<20)
	if got := ev.of(EventError); len(got) != 2 {
		t.Fatalf("before the flush: %+v, want each error once", got)
	}
	c.flush(time.Minute)
	errs, dels := ev.of(EventError), ev.of(EventDeleted)
	if len(errs) != 3 || errs[2].Detail != "disk full (4 more times in 1m0s)" {
		t.Errorf("errors %+v", errs)
	}
	if len(dels) != 1 || dels[0].Detail != "deleted 2 segment(s), 2.0 MiB, for recordMinFreeBytes" {
		t.Errorf("deletions %+v", dels)
	}
	c.flush(time.Minute)
	c.report(EventError, "cam", "disk full")
	if n := len(ev.of(EventError)); n != 4 {
		t.Errorf("a new interval: %d errors, want the repeat raised again", n)
	}
}
