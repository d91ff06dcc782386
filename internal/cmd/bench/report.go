package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// fanoutResult is one "1 camera -> N readers" window.
type fanoutResult struct {
	readers int
	sample  result
	floor   *result // the bare writer's window with as many sockets; nil: not measured
}

// report gathers every figure of a run and renders BENCHMARKS.md's section.
type report struct {
	start      time.Time
	took       time.Duration
	command    string
	machine    string
	commit     string
	binarySize int64

	idle      result // default config
	idlePaths result // default config + N idle on-demand paths
	idleBench result // the 1-camera config before any reader
	fanout    []fanoutResult
	rssAfter  uint64
	multi     *result
	whep      []whepResult
	whepBase  uint64 // RSS of the WebRTC scenario's agent before its first reader
	rec       []recordResult
	compare   *compareReport // the side-by-side run, if any
	curves    []curveSet
	plot      string // the curves PNG, relative to the Markdown file
	playback  *playbackResult

	coldDirect, coldAgent []time.Duration
	warmDirect, warmAgent []time.Duration
}

const (
	beginMarker  = "<!-- bench:begin -->"
	endMarker    = "<!-- bench:end -->"
	compareBegin = "<!-- compare:begin -->"
	compareEnd   = "<!-- compare:end -->"
)

// median is the middle value of vs (the mean of the middle two for an
// even count); 0 for none.
func median[T ~int64 | ~float64](vs []T) T {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%s (min %s, max %s, n=%d)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)), len(ds))
}

// verdict says whether got met the target (lower is better) and by how much
// it missed.
func verdict(got, limit float64, unit string) string {
	if got <= limit {
		return "met"
	}
	if limit > 0 && got >= 2*limit {
		return fmt.Sprintf("**missed**: %.3g %s, %.1f× the target", got, unit, got/limit)
	}
	return fmt.Sprintf("**missed** by %.2f %s (+%.0f %%)", got-limit, unit, (got-limit)/limit*100)
}

func (r *report) markdown(o options) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }

	p("### Run of %s", r.start.UTC().Format("2006-01-02 15:04 MST"))
	p("")
	p("- Machine: %s", r.machine)
	p("- Command: `%s` (took %s), source tree %s", r.command, r.took.Round(time.Second), r.commit)
	p("- Camera: `testdata/camera/rtsp_camera.py` (GStreamer RTSP server) passing the clip through:")
	p("  H.264 1280x720 25 fps ~2 Mbit/s, GOP 2 s; agent sources over TCP. Readers:")
	p("  `ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`. CPU: utime+stime of the agent")
	p("  over a %s window after %s of warm-up, %% of one core. RSS: VmRSS, end of window (peak).", o.window, o.warmup)
	p("  Out: bytes the agent wrote (wchar of /proc/PID/io: sockets and logs). A reader keeps up when it")
	p("  received 25 fps over the window, less the 0.5 s granularity of ffmpeg's progress report.")
	p("  WebRTC and the API on loopback ports, uplink off (no broker).")
	switch o.only {
	case "record":
		r.recordMarkdown(p)
		return w.String()
	case "whep":
		r.whepMarkdown(p)
		return w.String()
	}
	p("")
	p("| load | agent CPU | RSS end (peak) | readers keeping up (min fps) | out | dropped | target | |")
	p("|---|---|---|---|---|---|---|---|")
	row := func(name string, s result, target, v string) {
		keep, out, drop := "–", "–", "–"
		if s.readers > 0 {
			keep = fmt.Sprintf("%d/%d (%.1f)", s.keepingUp, s.readers, s.minFPS)
			if s.outMbps >= 0 {
				out = fmt.Sprintf("%.1f Mbit/s", s.outMbps)
			}
			if s.dropped >= 0 {
				drop = fmt.Sprintf("%.0f", s.dropped)
			} else {
				drop = "n/a"
			}
		}
		p("| %s | %.2f %% | %.1f MB (%.1f) | %s | %s | %s | %s | %s |", name, s.cpuPct, mb(s.rssEnd), mb(s.rssPeak), keep, out, drop, target, v)
	}
	// A scenario not run (-only) gets no row rather than zeros that read
	// as met.
	if r.idle.rssEnd > 0 {
		row("idle, default config", r.idle, "RSS ≤ 14 MB", verdict(mb(r.idle.rssEnd), 14, "MB"))
	}
	// MB here are 10^6 bytes, as in the reference figures.
	if o.idlePaths > 0 && r.idlePaths.rssEnd > 0 {
		extra := mb(r.idlePaths.rssEnd) - mb(r.idle.rssEnd)
		v := verdict(extra, 2, "MB")
		if r.idlePaths.cpuPct >= 0.05 {
			v += fmt.Sprintf("; CPU %.2f %% is not 0", r.idlePaths.cpuPct)
		}
		row(fmt.Sprintf("%d idle on-demand paths (%+.1f MB over idle)", o.idlePaths, extra), r.idlePaths, "< 2 MB more, 0 % CPU", v)
	}
	if r.idleBench.rssEnd > 0 {
		row("1-camera config, no reader yet", r.idleBench, "", "")
	}
	for _, f := range r.fanout {
		target, v := "", ""
		switch f.readers {
		case 50:
			target = "RSS ≤ 22 MB, CPU ≤ 2.6 %"
			v = verdict(mb(f.sample.rssEnd), 22, "MB") + " / " + verdict(f.sample.cpuPct, 2.6, "% of a core")
		}
		if f.sample.keepingUp < f.readers {
			v = strings.TrimPrefix(v+"; **readers fell behind**", "; ")
		}
		row(fmt.Sprintf("1 camera → %d reader(s)", f.readers), f.sample, target, v)
	}
	if len(r.fanout) > 0 {
		// Compared with the same process before its first reader.
		base := mb(r.idleBench.rssEnd)
		after := mb(r.rssAfter)
		p("| RSS %s after the last reader left | | %.1f MB (%+.0f %% vs the same config idle) | | | | within 20 %% of idle | %s |",
			o.settle, after, (after-base)/base*100, verdict(after, base*1.2, "MB"))
	}
	if r.multi != nil {
		v := "met"
		if r.multi.keepingUp < r.multi.readers || r.multi.dropped > 0 {
			v = "**missed**: readers fell behind or packets dropped"
		}
		row(fmt.Sprintf("%d cameras × %d readers", o.multiCams, o.multiRdrs), *r.multi, "every reader keeps up, no drops", v)
	}
	if len(r.fanout) > 0 && r.fanout[0].floor != nil {
		p("")
		p("Floor: a bare process (`floor.go`) pulling the same camera and writing each access unit,")
		p("framed as interleaved RTP, to as many loopback TCP sockets with one write per access unit")
		p("per socket and nothing else; its CPU over the same window after the same warm-up.")
		p("")
		p("| TCP readers | camgate CPU | floor CPU | camgate / floor | target | |")
		p("|---|---|---|---|---|---|")
		for _, f := range r.fanout {
			if f.floor == nil {
				continue
			}
			ratio := f.sample.cpuPct / max(f.floor.cpuPct, 0.01)
			p("| %d | %.2f %% | %.2f %% | %.2f | ≤ 1.5 | %s |", f.readers, f.sample.cpuPct, f.floor.cpuPct, ratio, verdict(ratio, 1.5, "×"))
		}
	}
	r.whepMarkdown(p)
	p("")
	p("| first complete IDR at the reader | camgate | camera directly | target | |")
	p("|---|---|---|---|---|")
	if len(r.coldAgent) > 0 {
		delta := median(r.coldAgent) - median(r.coldDirect)
		p("| cold on-demand camera (median) | %s | %s | ≤ direct + 20 ms | %s (%+.0f ms) |",
			spread(r.coldAgent), spread(r.coldDirect), verdict(float64(delta.Milliseconds()), 20, "ms"), float64(delta.Milliseconds()))
	}
	if len(r.warmAgent) > 0 {
		p("| new reader joins a running stream (median) | %s | %s | < 150 ms | %s |",
			spread(r.warmAgent), spread(r.warmDirect), verdict(float64(median(r.warmAgent).Milliseconds()), 149, "ms"))
	}
	r.recordMarkdown(p)
	p("")
	mib := float64(r.binarySize) / (1 << 20)
	p("Binary: %.1f MiB (`-trimpath -ldflags \"-s -w\"`, CGO_ENABLED=0, %s); target ≤ 20 MiB: %s.", mib, "linux/amd64 when run here", verdict(mib, 20, "MiB"))
	return w.String()
}

// replaceSection puts md between the bench markers of file.
func replaceSection(file, beginMarker, endMarker, md string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, beginMarker)
	j := strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s section", file, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + md + "\n" + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}

// whepMarkdown renders the WebRTC fan-out table.
func (r *report) whepMarkdown(p func(string, ...any)) {
	if len(r.whep) == 0 {
		return
	}
	p("")
	p("WebRTC readers: pion WHEP clients on loopback (UDP, default interceptors: NACK and RTCP")
	p("reports), offering four H.264 profiles, Opus and G.711, counting packets and decoding nothing; same")
	p("camera and window. Packets and bytes are the video RTP payloads the readers received.")
	p("")
	p("| WebRTC readers | agent CPU | RSS end (peak) | RSS per reader | packets/s per reader | bytes per packet | lost | first packet (median of the new readers) |")
	p("|---|---|---|---|---|---|---|---|")
	for _, w := range r.whep {
		per := (mb(w.sample.rssEnd) - mb(r.whepBase)) / float64(w.readers)
		p("| %d | %.2f %% | %.1f MB (%.1f) | %.2f MB | %.0f | %.0f | %d | %s |", w.readers, w.sample.cpuPct, mb(w.sample.rssEnd), mb(w.sample.rssPeak),
			per, w.ppsPer, w.bytesPer, w.lost, ms(w.joinMedia))
	}
}

// compareMarkdown renders the side-by-side section: the side-by-side
// tables and the cost curves.
func (r *report) compareMarkdown(o options) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("Run of %s on %s; `%s` (took %s), source tree %s.", r.start.UTC().Format("2006-01-02 15:04 MST"), r.machine,
		r.command, r.took.Round(time.Second), r.commit)
	if r.compare != nil {
		p("")
		p("### Side by side, %d rounds", r.compare.rounds)
		p("")
		r.compare.markdown(p, o)
	}
	if len(r.curves) > 0 {
		p("")
		r.curvesMarkdown(p, o)
		if r.plot != "" {
			p("")
			p("![Cost curves: CPU and RSS against readers and against cameras, a line per relay](%s)", r.plot)
		}
	}
	return w.String()
}
