package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Cost curves (-only curves, or any run with -peer): what each added
// reader of one camera and each added camera (with one reader) costs, for
// camgate and each peer, with the swarm's light readers (swarm.go). Every
// relay pulls the same camera process; "cameras" are paths that each pull
// it over a session of their own.

// curvePoint is one window of a curve.
type curvePoint struct {
	n         int
	s         result
	keepingUp int // readers that got every access unit of the window
}

// curveSet is one relay's two curves.
type curveSet struct {
	relay   string
	readers []curvePoint
	cameras []curvePoint
}

func (b *bench) curves(ctx context.Context) error {
	cam, err := b.startCamera("camera-curves")
	if err != nil {
		return err
	}
	relays := []string{"camgate"}
	for _, p := range b.o.peers {
		relays = append(relays, p.name)
	}
	for _, name := range relays {
		cs := curveSet{relay: name}
		if len(b.o.curveReaders) > 0 {
			r, err := b.startRelay(ctx, name, "curve-"+name+"-readers", cam.URL, 1)
			if err != nil {
				return err
			}
			for _, n := range b.o.curveReaders {
				pt, err := b.curveWindow(ctx, r, fmt.Sprintf("curve-%s-r%03d", name, n), n, r.rtspURL("cam0"))
				if err != nil {
					r.proc.Stop(5 * time.Second)
					return err
				}
				cs.readers = append(cs.readers, pt)
			}
			r.proc.Stop(5 * time.Second)
		}
		for _, m := range b.o.curveCams {
			r, err := b.startRelay(ctx, name, fmt.Sprintf("curve-%s-c%02d", name, m), cam.URL, m)
			if err != nil {
				return err
			}
			var urls []string
			for _, p := range pathNames(m) {
				urls = append(urls, r.rtspURL(p))
			}
			pt, err := b.curveWindow(ctx, r, fmt.Sprintf("curve-%s-c%02d-swarm", name, m), m, urls...)
			r.proc.Stop(5 * time.Second)
			if err != nil {
				return err
			}
			cs.cameras = append(cs.cameras, pt)
		}
		b.report.curves = append(b.report.curves, cs)
	}
	return nil
}

// curveWindow starts n swarm readers over urls, waits the warm-up and
// measures the relay over one window.
func (b *bench) curveWindow(ctx context.Context, r *relay, label string, n int, urls ...string) (curvePoint, error) {
	sw, err := b.startSwarm(label, n, urls...)
	if err != nil {
		return curvePoint{}, err
	}
	defer sw.Stop(5 * time.Second)
	if err := sleep(ctx, b.o.warmup); err != nil {
		return curvePoint{}, err
	}
	c0 := sw.counts()
	start := time.Now()
	s, err := sample(ctx, r.pid(), b.o.window, nil)
	if err != nil {
		return curvePoint{}, err
	}
	c1 := sw.counts()
	secs := time.Since(start).Seconds()
	pt := curvePoint{n: n, s: s}
	// The swarm reports twice a second: allow half a second of frames
	// at either end, plus one.
	want := nominalFPS*secs - nominalFPS*0.5 - 1
	minFPS := -1.0
	for i := range c1 {
		got := float64(c1[i] - c0[i])
		if got >= want {
			pt.keepingUp++
		}
		if fps := got / secs; minFPS < 0 || fps < minFPS {
			minFPS = fps
		}
	}
	pt.s.minFPS = max(minFPS, 0)
	b.logf("%s, %s: %s, %d/%d readers keeping up (min %.1f fps)", r.name, label, pt.s, pt.keepingUp, n, pt.s.minFPS)
	return pt, nil
}

// slope is the least-squares slope of y over x.
func slope(xs, ys []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(xs))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// curvesMarkdown renders the curves as tables, a column per relay.
func (r *report) curvesMarkdown(p func(string, ...any), o options) {
	if len(r.curves) == 0 {
		return
	}
	p("### Cost curves")
	p("")
	p("Swarm readers (`internal/cmd/bench/swarm.go`: RTSP over TCP by hand, counting access units, decoding")
	p("nothing; one process for all), CPU and RSS of the relay over %v after %v of warm-up. Cells: CPU", o.window, o.warmup)
	p("%% of one core / RSS MB / readers that got every access unit. Slopes: least squares over the points.")
	for _, kind := range []string{"readers", "cameras"} {
		p("")
		if kind == "readers" {
			p("One camera, N readers:")
		} else {
			p("N cameras (paths each pulling the camera over a session of its own), one reader each:")
		}
		p("")
		head, sep := "| "+kind+" |", "|---|"
		for _, cs := range r.curves {
			head += " " + cs.relay + " |"
			sep += "---|"
		}
		p("%s", head)
		p("%s", sep)
		pts := func(cs curveSet) []curvePoint {
			if kind == "readers" {
				return cs.readers
			}
			return cs.cameras
		}
		var ns []int
		for _, cs := range r.curves {
			for _, pt := range pts(cs) {
				if !containsInt(ns, pt.n) {
					ns = append(ns, pt.n)
				}
			}
		}
		for _, n := range ns {
			row := fmt.Sprintf("| %d |", n)
			for _, cs := range r.curves {
				cell := "–"
				for _, pt := range pts(cs) {
					if pt.n == n {
						cell = fmt.Sprintf("%.2f %% / %.1f / %d", pt.s.cpuPct, mb(pt.s.rssEnd), pt.keepingUp)
						if pt.keepingUp < pt.n {
							cell = "**" + cell + "**"
						}
					}
				}
				row += " " + cell + " |"
			}
			p("%s", row)
		}
		unit := strings.TrimSuffix(kind, "s")
		rowCPU, rowRSS, rowFall := "| CPU per added "+unit+" |", "| RSS per added "+unit+" |", "| first point where a reader falls behind |"
		for _, cs := range r.curves {
			var xs, cpu, rss []float64
			fall := "none"
			for _, pt := range pts(cs) {
				xs = append(xs, float64(pt.n))
				cpu = append(cpu, pt.s.cpuPct)
				rss = append(rss, mb(pt.s.rssEnd))
				if pt.keepingUp < pt.n && fall == "none" {
					fall = fmt.Sprintf("%d (%d kept up)", pt.n, pt.keepingUp)
				}
			}
			if fall == "none" && len(xs) > 0 {
				fall = fmt.Sprintf("none up to %d", int(xs[len(xs)-1]))
			}
			rowCPU += fmt.Sprintf(" %.3f %% |", slope(xs, cpu))
			rowRSS += fmt.Sprintf(" %.3f MB |", slope(xs, rss))
			rowFall += " " + fall + " |"
		}
		p("%s", rowCPU)
		p("%s", rowRSS)
		p("%s", rowFall)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
