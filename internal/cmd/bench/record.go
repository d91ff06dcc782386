package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/internal/interop"
)

// recordResult is one "N cameras recorded" window: nobody reads, the
// recorder pulls every camera.
type recordResult struct {
	cameras   int
	sample    result
	diskMbps  float64 // segment bytes added over the window, all cameras
	keepingUp int     // paths whose recording grew by the whole window, without error
	errors    []string
}

// playbackResult is the latency of the playback listener on the 1-camera
// recording.
type playbackResult struct {
	recorded      time.Duration
	list          []time.Duration // GET /list
	getFirstByte  []time.Duration // GET /get of 10 s from the middle of the segment being written
	getTotal      []time.Duration
	getBytes      int64
	getEndTotal   []time.Duration // GET /get of the last 10 s
	getEndFirstBy []time.Duration
}

// recordSpan is one entry of GET /list.
type recordSpan struct {
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration"`
}

func listSpans(ctx context.Context, base, path string) ([]recordSpan, time.Duration, error) {
	began := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/list?path="+url.QueryEscape(path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var out []recordSpan
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET /list?path=%s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, 0, err
	}
	return out, time.Since(began), nil
}

// recordedFor is the length of the last span of path; 0 before any.
func recordedFor(ctx context.Context, base, path string) time.Duration {
	s, _, err := listSpans(ctx, base, path)
	if err != nil || len(s) == 0 {
		return 0
	}
	return time.Duration(s[len(s)-1].Duration * float64(time.Second))
}

// getTimed fetches a /get answer: time to the first byte, in all, size.
func getTimed(ctx context.Context, base, path string, start time.Time, d time.Duration) (first, total time.Duration, n int64, err error) {
	u := base + "/get?" + url.Values{"path": {path}, "start": {start.UTC().Format(time.RFC3339Nano)},
		"duration": {strconv.FormatFloat(d.Seconds(), 'f', -1, 64)}}.Encode()
	began := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var b [1]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil {
		return 0, 0, 0, err
	}
	first = time.Since(began)
	n, err = io.Copy(io.Discard, resp.Body)
	return first, time.Since(began), n + 1, err
}

// segmentBytes sums the recordings under dir.
func segmentBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".mp4") {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// recordErrors lists the recording errors /v1/health reports for the
// paths named.
func recordErrors(api string, names map[string]bool) []string {
	resp, err := http.Get(api + "/v1/health")
	if err != nil {
		return []string{err.Error()}
	}
	defer resp.Body.Close()
	var h struct {
		Paths []struct {
			Name      string `json:"name"`
			Recording *struct {
				State     string `json:"state"`
				LastError string `json:"lastError"`
			} `json:"recording"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range h.Paths {
		if !names[p.Name] {
			continue
		}
		switch {
		case p.Recording == nil:
			out = append(out, p.Name+": not recorded")
		case p.Recording.State != "recording" || p.Recording.LastError != "":
			out = append(out, p.Name+": "+p.Recording.State+" "+p.Recording.LastError)
		}
	}
	return out
}

// recording records N cameras (one GStreamer process serving N mounts)
// with nobody reading them, and measures the agent and the disk; on the
// 1-camera run it then measures the playback listener.
func (b *bench) recording(ctx context.Context) error {
	for _, n := range b.o.record {
		var mounts []string
		for i := range n {
			mounts = append(mounts, fmt.Sprintf("/rec%d", i))
		}
		label := fmt.Sprintf("record%d", n)
		cam, err := b.startCamera(label+"-cameras", mounts...)
		if err != nil {
			return err
		}
		camBase := strings.TrimSuffix(cam.URL, mounts[0])
		paths := map[string]map[string]any{}
		for i, m := range mounts {
			paths[fmt.Sprintf("r%d", i)] = map[string]any{"source": camBase + m, "rtspTransport": "tcp", "record": true}
		}
		port, err := interop.FreeTCPPort()
		if err != nil {
			return err
		}
		a, api, err := b.startAgent(label, paths, map[string]map[string]any{"playback": {"address": "127.0.0.1:" + strconv.Itoa(port)}})
		if err != nil {
			return err
		}
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		deadline := time.Now().Add(30 * time.Second)
		for i := range n {
			for recordedFor(ctx, base, fmt.Sprintf("r%d", i)) == 0 {
				if time.Now().After(deadline) {
					return fmt.Errorf("path r%d is not recorded after 30 s", i)
				}
				if err := sleep(ctx, 200*time.Millisecond); err != nil {
					return err
				}
			}
		}
		if err := sleep(ctx, b.o.warmup); err != nil {
			return err
		}
		dir := filepath.Join(a.Opts.DataDir, "recordings")
		before := make([]time.Duration, n)
		for i := range n {
			before[i] = recordedFor(ctx, base, fmt.Sprintf("r%d", i))
		}
		bytes0 := segmentBytes(dir)
		s, err := sample(ctx, a.PID(), b.o.window, nil)
		if err != nil {
			return err
		}
		rr := recordResult{cameras: n, sample: s}
		rr.diskMbps = float64(segmentBytes(dir)-bytes0) * 8 / b.o.window.Seconds() / 1e6
		rr.sample.dropped = scrapeDropped(api)
		names := map[string]bool{}
		for p := range paths {
			names[p] = true
		}
		rr.errors = recordErrors(api, names)
		for i := range n {
			// Parts are written each second: the listed length may lag
			// the window by up to one on either side.
			if grew := recordedFor(ctx, base, fmt.Sprintf("r%d", i)) - before[i]; grew >= b.o.window-1500*time.Millisecond {
				rr.keepingUp++
			}
		}
		b.report.rec = append(b.report.rec, rr)
		b.logf("%d camera(s) recorded: %s, %.2f Mbit/s to disk, %d/%d keeping up, errors %v", n, s, rr.diskMbps, rr.keepingUp, n, rr.errors)
		if n == 1 {
			if err := b.playbackLatency(ctx, base, "r0"); err != nil {
				return err
			}
		}
		b.stopAll()
	}
	return nil
}

// playbackLatency times GET /list and GET /get on the recording of path
// (one segment being written, its default length being 10 min).
func (b *bench) playbackLatency(ctx context.Context, base, path string) error {
	spans, _, err := listSpans(ctx, base, path)
	if err != nil || len(spans) == 0 {
		return fmt.Errorf("list %s: %v", path, err)
	}
	sp := spans[len(spans)-1]
	pr := &playbackResult{recorded: time.Duration(sp.Duration * float64(time.Second))}
	for range 20 {
		_, took, err := listSpans(ctx, base, path)
		if err != nil {
			return err
		}
		pr.list = append(pr.list, took)
	}
	mid := sp.Start.Add(pr.recorded / 2)
	for range 10 {
		first, total, n, err := getTimed(ctx, base, path, mid, 10*time.Second)
		if err != nil {
			return err
		}
		pr.getFirstByte, pr.getTotal, pr.getBytes = append(pr.getFirstByte, first), append(pr.getTotal, total), n
		first, total, _, err = getTimed(ctx, base, path, sp.Start.Add(pr.recorded-10*time.Second), 10*time.Second)
		if err != nil {
			return err
		}
		pr.getEndFirstBy, pr.getEndTotal = append(pr.getEndFirstBy, first), append(pr.getEndTotal, total)
	}
	b.report.playback = pr
	b.logf("playback of %s recorded: list %v, get 10 s from the middle: first byte %s, all %s (%d bytes); the last 10 s: %s, %s",
		pr.recorded.Round(time.Second), median(pr.list).Round(10*time.Microsecond), ms(median(pr.getFirstByte)), ms(median(pr.getTotal)), pr.getBytes,
		ms(median(pr.getEndFirstBy)), ms(median(pr.getEndTotal)))
	return nil
}

// recordMarkdown renders the recording figures.
func (r *report) recordMarkdown(p func(string, ...any)) {
	if len(r.rec) == 0 {
		return
	}
	p("")
	p("Recording (`-record`): the same camera process serving N mounts, the agent recording each")
	p("(record: true, 1 s parts, each written and fsynced, 10 min segments) with nobody reading; disk: segment")
	p("bytes added over the window. A path keeps up when its listed recording grew by the window (±1 s parts).")
	p("")
	p("| recorded cameras | agent CPU | per camera | RSS end (peak) | to disk | per camera | keeping up | dropped | errors |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.rec {
		drop := "n/a"
		if x.sample.dropped >= 0 {
			drop = fmt.Sprintf("%.0f", x.sample.dropped)
		}
		errs := "none"
		if len(x.errors) > 0 {
			errs = strings.Join(x.errors, "; ")
		}
		p("| %d | %.2f %% | %.2f %% | %.1f MB (%.1f) | %.2f Mbit/s | %.2f Mbit/s | %d/%d | %s | %s |", x.cameras, x.sample.cpuPct,
			x.sample.cpuPct/float64(x.cameras), mb(x.sample.rssEnd), mb(x.sample.rssPeak), x.diskMbps, x.diskMbps/float64(x.cameras),
			x.keepingUp, x.cameras, drop, errs)
	}
	if pr := r.playback; pr != nil {
		p("")
		p("| playback, 1 camera, %s recorded in one segment | median | |", pr.recorded.Round(time.Second))
		p("|---|---|---|")
		p("| GET /list | %.1f ms | n=%d |", float64(median(pr.list))/float64(time.Millisecond), len(pr.list))
		p("| GET /get 10 s from the middle: first byte / whole answer (%.1f MB) | %s / %s | n=%d |", mb(uint64(pr.getBytes)),
			ms(median(pr.getFirstByte)), ms(median(pr.getTotal)), len(pr.getTotal))
		p("| GET /get the last 10 s: first byte / whole answer | %s / %s | n=%d |", ms(median(pr.getEndFirstBy)), ms(median(pr.getEndTotal)), len(pr.getEndTotal))
	}
}
