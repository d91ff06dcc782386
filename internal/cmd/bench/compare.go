package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// The side-by-side run (-only compare, or any run with -peer): camgate and
// each peer relay the same camera to the same loads, one relay after the
// other within a round and the order rotated between rounds, so drift on
// the machine falls on every relay alike. Per load and relay it reports
// the median over the rounds and the spread, the ratio of camgate to the
// best peer, and the floor (floor.go) where there is one.

// cmpLoad is one load of the side-by-side run.
type cmpLoad struct {
	kind string // idle, tcp, udp, whep
	n    int
}

func (l cmpLoad) String() string {
	switch l.kind {
	case "tcp":
		return fmt.Sprintf("%d RTSP readers (TCP)", l.n)
	case "udp":
		return fmt.Sprintf("%d RTSP readers (UDP)", l.n)
	case "whep":
		return fmt.Sprintf("%d WebRTC readers", l.n)
	}
	return "idle (camera pulled, no reader)"
}

// cmpSample is one relay's window under one load.
type cmpSample struct {
	result
	ppsPer   float64       // WebRTC: video packets per second per reader
	bytesPer float64       // WebRTC: payload bytes per packet
	join     time.Duration // WebRTC: median first packet of the new readers
}

// compareReport holds every window of the side-by-side run.
type compareReport struct {
	relays   []string // camgate first
	versions map[string]string
	loads    []cmpLoad
	rounds   int
	got      map[cmpLoad]map[string][]cmpSample // "floor" for the floor
}

func (b *bench) compareLoads() []cmpLoad {
	loads := []cmpLoad{{kind: "idle"}}
	for _, n := range b.o.cmpTCP {
		loads = append(loads, cmpLoad{"tcp", n})
	}
	for _, n := range b.o.cmpUDP {
		loads = append(loads, cmpLoad{"udp", n})
	}
	for _, n := range b.o.cmpWHEP {
		loads = append(loads, cmpLoad{"whep", n})
	}
	return loads
}

// compare is the side-by-side scenario.
func (b *bench) compare(ctx context.Context) error {
	cr := &compareReport{relays: []string{"camgate"}, versions: map[string]string{}, loads: b.compareLoads(),
		rounds: b.o.rounds, got: map[cmpLoad]map[string][]cmpSample{}}
	for _, p := range b.o.peers {
		cr.relays = append(cr.relays, p.name)
		cr.versions[p.name] = peerVersion(p)
	}
	b.report.compare = cr
	cam, err := b.startCamera("camera-compare")
	if err != nil {
		return err
	}
	papi, err := whepAPI()
	if err != nil {
		return err
	}
	add := func(l cmpLoad, relay string, s cmpSample) {
		if cr.got[l] == nil {
			cr.got[l] = map[string][]cmpSample{}
		}
		cr.got[l][relay] = append(cr.got[l][relay], s)
	}
	for round := range b.o.rounds {
		order := slices.Clone(cr.relays)
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		for _, name := range order {
			if err := b.compareRelay(ctx, papi, name, round, cam.URL, cr.loads, add); err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, name, err)
			}
		}
		if !b.o.floor {
			continue
		}
		for _, l := range cr.loads {
			if l.kind != "tcp" && l.kind != "udp" {
				continue
			}
			fl, err := b.floorMode(ctx, cam.URL, l.n, l.kind)
			if err != nil {
				return err
			}
			b.logf("round %d, floor, %s: %s", round+1, l, fl)
			add(l, "floor", cmpSample{result: fl})
		}
	}
	return nil
}

// compareRelay runs every load against one relay.
func (b *bench) compareRelay(ctx context.Context, papi *webrtc.API, name string, round int, camURL string, loads []cmpLoad, add func(cmpLoad, string, cmpSample)) error {
	r, err := b.startRelay(ctx, name, fmt.Sprintf("cmp-%s-r%d", name, round+1), camURL, 1)
	if err != nil {
		return err
	}
	defer r.proc.Stop(5 * time.Second)
	var readers []*reader
	var wheps []*whepReader
	stopReaders := func() {
		for _, rd := range readers {
			rd.Stop(5 * time.Second)
		}
		readers = nil
		for _, w := range wheps {
			w.close()
		}
		wheps = nil
	}
	defer stopReaders()
	kind := ""
	for _, l := range loads {
		if l.kind != kind {
			stopReaders()
			kind = l.kind
		}
		if l.kind == "udp" && !r.udp {
			continue
		}
		var joins []time.Duration
		switch l.kind {
		case "tcp", "udp":
			for len(readers) < l.n {
				rd, err := b.startReaderT(r.rtspURL("cam0"), fmt.Sprintf("cmp-%s-r%d-%s%02d", name, round+1, l.kind, len(readers)), l.kind)
				if err != nil {
					return err
				}
				readers = append(readers, rd)
			}
		case "whep":
			for len(wheps) < l.n {
				w, err := startWHEP(ctx, papi, r.whep("cam0"))
				if err != nil {
					return err
				}
				wheps = append(wheps, w)
				joins = append(joins, w.joined)
			}
		}
		if err := sleep(ctx, b.o.warmup); err != nil {
			return err
		}
		count := func() (p, by uint64) {
			for _, w := range wheps {
				p += w.packets.Load()
				by += w.bytes.Load()
			}
			return
		}
		p0, b0 := count()
		start := time.Now()
		s, err := sample(ctx, r.pid(), b.o.window, readers)
		if err != nil {
			return err
		}
		cs := cmpSample{result: s}
		if l.kind == "whep" {
			p1, b1 := count()
			if p1 > p0 {
				cs.ppsPer = float64(p1-p0) / time.Since(start).Seconds() / float64(l.n)
				cs.bytesPer = float64(b1-b0) / float64(p1-p0)
			}
			slices.Sort(joins)
			cs.join = joins[len(joins)/2]
			cs.readers, cs.keepingUp = l.n, 0
			for _, w := range wheps {
				if w.packets.Load() > 0 {
					cs.keepingUp++
				}
			}
		}
		b.logf("round %d, %s, %s: %s", round+1, name, l, s)
		add(l, name, cs)
	}
	return nil
}

// peerVersion is the first line a peer prints for its version flag.
func peerVersion(p peer) string {
	flag := "--version"
	if p.name == "go2rtc" {
		flag = "-version"
	}
	out, _ := exec.Command(p.bin, flag).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if line == "" {
		return "version unknown"
	}
	return line
}

// markdown renders the side-by-side tables.
func (cr *compareReport) markdown(p func(string, ...any), o options) {
	var vs []string
	for _, name := range cr.relays[1:] {
		vs = append(vs, fmt.Sprintf("%s (`%s`)", name, cr.versions[name]))
	}
	if len(vs) == 0 {
		vs = append(vs, "none (no -peer given)")
	}
	p("- Peers: %s, built by the user from their public sources and configured by the harness", strings.Join(vs, ", "))
	p("  (`internal/cmd/bench/peers.go`): loopback only, RTSP (TCP and, where the relay has it, UDP), WebRTC")
	p("  with loopback candidates, nothing else; every relay pulls the camera over TCP, always on.")
	p("- Each round runs every load on each relay in turn (the order rotated between rounds), then the")
	p("  floor. Cells: median over the rounds, (min–max). CPU: utime+stime over %v after %v of warm-up,", o.window, o.warmup)
	p("  %% of one core. RSS: VmRSS at the end of the window. RTSP readers: `ffmpeg -rtsp_transport tcp|udp")
	p("  -i URL -c copy -f null -`; WebRTC readers: the pion clients of the WebRTC table. † a reader did not")
	p("  keep up in some round.")
	p("")
	head := "| load |"
	sep := "|---|"
	for _, r := range cr.relays {
		head += " " + r + " |"
		sep += "---|"
	}
	head += " floor | camgate / best peer | camgate / floor |"
	sep += "---|---|---|"
	p("CPU, %% of one core:")
	p("")
	p("%s", head)
	p("%s", sep)
	for _, l := range cr.loads {
		row := "| " + l.String() + " |"
		cg := cr.median(l, "camgate", cpuOf)
		best := -1.0
		for _, r := range cr.relays {
			row += " " + cr.cell(l, r, cpuOf, "%.2f %%") + " |"
			if v := cr.median(l, r, cpuOf); r != "camgate" && v >= 0 && (best < 0 || v < best) {
				best = v
			}
		}
		row += " " + cr.cell(l, "floor", cpuOf, "%.2f %%") + " |"
		row += " " + ratio(cg, best) + " | " + ratio(cg, cr.median(l, "floor", cpuOf)) + " |"
		p("%s", row)
	}
	p("")
	p("RSS, MB (WebRTC rows: and per reader over the idle RSS of the same relay):")
	p("")
	head = "| load |"
	sep = "|---|"
	for _, r := range cr.relays {
		head += " " + r + " |"
		sep += "---|"
	}
	p("%s camgate / best peer |", head)
	p("%s---|", sep)
	idle := cmpLoad{kind: "idle"}
	for _, l := range cr.loads {
		row := "| " + l.String() + " |"
		cg := cr.median(l, "camgate", rssOf)
		best := -1.0
		for _, r := range cr.relays {
			cell := cr.cell(l, r, rssOf, "%.1f")
			if l.kind == "whep" {
				if base := cr.median(idle, r, rssOf); base >= 0 && cr.median(l, r, rssOf) >= 0 {
					cell += fmt.Sprintf("; %.2f per reader", (cr.median(l, r, rssOf)-base)/float64(l.n))
				}
			}
			row += " " + cell + " |"
			if v := cr.median(l, r, rssOf); r != "camgate" && v >= 0 && (best < 0 || v < best) {
				best = v
			}
		}
		p("%s %s |", row, ratio(cg, best))
	}
	whep := slices.ContainsFunc(cr.loads, func(l cmpLoad) bool { return l.kind == "whep" })
	if !whep {
		return
	}
	p("")
	p("WebRTC readers, medians: video packets per second per reader / payload bytes per packet / first")
	p("packet of the new readers:")
	p("")
	p("%s", head)
	p("%s", sep)
	for _, l := range cr.loads {
		if l.kind != "whep" {
			continue
		}
		row := "| " + l.String() + " |"
		for _, r := range cr.relays {
			ss := cr.got[l][r]
			if len(ss) == 0 {
				row += " – |"
				continue
			}
			var pps, bpp []float64
			var joins []time.Duration
			for _, s := range ss {
				pps = append(pps, s.ppsPer)
				bpp = append(bpp, s.bytesPer)
				joins = append(joins, s.join)
			}
			row += fmt.Sprintf(" %.0f / %.0f / %s |", median(pps), median(bpp), ms(median(joins)))
		}
		p("%s", row)
	}
}

func cpuOf(s cmpSample) float64 { return s.cpuPct }
func rssOf(s cmpSample) float64 { return mb(s.rssEnd) }

// median is the median of f over the rounds of relay under l; -1: none.
func (cr *compareReport) median(l cmpLoad, relay string, f func(cmpSample) float64) float64 {
	ss := cr.got[l][relay]
	if len(ss) == 0 {
		return -1
	}
	vs := make([]float64, len(ss))
	for i, s := range ss {
		vs[i] = f(s)
	}
	return median(vs)
}

// cell is "median (min–max)" of f, with † when a reader fell behind.
func (cr *compareReport) cell(l cmpLoad, relay string, f func(cmpSample) float64, format string) string {
	ss := cr.got[l][relay]
	if len(ss) == 0 {
		return "–"
	}
	vs := make([]float64, len(ss))
	behind := false
	for i, s := range ss {
		vs[i] = f(s)
		behind = behind || s.keepingUp < s.readers
	}
	out := fmt.Sprintf(format, median(vs))
	if len(vs) > 1 {
		out += fmt.Sprintf(" (%s–%s)", strings.TrimSuffix(fmt.Sprintf(format, slices.Min(vs)), " %"), fmt.Sprintf(format, slices.Max(vs)))
	}
	if behind {
		out += " †"
	}
	return out
}

func ratio(a, b float64) string {
	if a < 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
