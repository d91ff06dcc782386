package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/internal/interop"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture camgate targets.
const clkTck = 100

// nominalFPS is the clip's frame rate.
const nominalFPS = 25.0

// progressPeriod is how often a reader's ffmpeg reports its frame count.
const progressPeriod = 500 * time.Millisecond

// result is what one scenario's window measured.
type result struct {
	cpuPct  float64 // utime+stime over the window, % of one core
	sysPct  float64 // the stime part (the kernel working for the agent)
	rssEnd  uint64  // VmRSS at the end of the window, bytes
	rssPeak uint64  // highest VmRSS sampled in the window, bytes

	readers   int     // readers started
	keepingUp int     // readers alive at the end that received every frame of the window
	minFPS    float64 // lowest frame rate of a reader over the window
	outMbps   float64 // agent's bytes written (wchar: sockets and logs) over the window; -1 unknown
	dropped   float64 // agent /metrics *drop* counters at the end; -1 unknown
}

func (r result) String() string {
	s := fmt.Sprintf("CPU %.2f %% (kernel %.2f %%), RSS %.1f MB (peak %.1f)", r.cpuPct, r.sysPct, mb(r.rssEnd), mb(r.rssPeak))
	if r.readers > 0 {
		s += fmt.Sprintf(", %d/%d readers keeping up (min %.1f fps), %.1f Mbit/s written", r.keepingUp, r.readers, r.minFPS, r.outMbps)
	}
	return s
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	ut, st, err := cpuTimes(pid)
	return ut + st, err
}

// cpuTimes returns utime and stime of pid in clock ticks.
func cpuTimes(pid int) (utime, stime uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces; fields restart after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut, st, nil
}

// wchar returns the bytes pid passed to write-like syscalls (sockets
// included), from /proc/PID/io.
func wchar(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io: no wchar", pid)
}

// readRSS returns VmRSS of pid in bytes.
func readRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// sample measures pid over window: CPU from the difference of utime+stime,
// RSS once a second, and each reader's frames and bytes received.
func sample(ctx context.Context, pid int, window time.Duration, readers []*reader) (result, error) {
	var r result
	u0, s0, err := cpuTimes(pid)
	if err != nil {
		return r, fmt.Errorf("agent gone? %w", err)
	}
	w0, werr := wchar(pid)
	start := time.Now()
	marks := make([]int64, len(readers))
	for i, rd := range readers {
		marks[i] = rd.frames()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(window)
	defer deadline.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		case <-deadline.C:
			done = true
		}
		rss, err := readRSS(pid)
		if err != nil {
			return r, fmt.Errorf("agent gone? %w", err)
		}
		r.rssEnd = rss
		r.rssPeak = max(r.rssPeak, rss)
	}
	u1, s1, err := cpuTimes(pid)
	if err != nil {
		return r, fmt.Errorf("agent gone? %w", err)
	}
	w1, werr1 := wchar(pid)
	secs := time.Since(start).Seconds()
	r.cpuPct = float64(u1-u0+s1-s0) / clkTck / secs * 100
	r.sysPct = float64(s1-s0) / clkTck / secs * 100
	r.outMbps = -1
	if werr == nil && werr1 == nil {
		r.outMbps = float64(w1-w0) * 8 / secs / 1e6
	}
	r.readers = len(readers)
	r.minFPS = -1
	for i, rd := range readers {
		fps := float64(rd.frames()-marks[i]) / secs
		if r.minFPS < 0 || fps < r.minFPS {
			r.minFPS = fps
		}
		// ffmpeg reports progress every 0.5 s, so either end of the window
		// may be up to 0.5 s stale: allow that many frames, plus one.
		want := nominalFPS*secs - nominalFPS*progressPeriod.Seconds() - 1
		if ok, _ := rd.Exited(); !ok && float64(rd.frames()-marks[i]) >= want {
			r.keepingUp++
		}
	}
	if r.minFPS < 0 {
		r.minFPS = 0
	}
	r.dropped = -1
	return r, nil
}

// reader is one `ffmpeg -rtsp_transport tcp -i URL -c copy -f null -` with
// its -progress output parsed for the frames received.
type reader struct{ *interop.Proc }

var progFrameRE = regexp.MustCompile(`(?m)^frame=(\d+)$`)

func (b *bench) startReader(url, label string) (*reader, error) {
	return b.startReaderT(url, label, "tcp")
}

// startReaderT is startReader over transport (tcp or udp).
func (b *bench) startReaderT(url, label, transport string) (*reader, error) {
	p, err := interop.StartProc(b.dir, label, "ffmpeg", "-nostdin", "-v", "error",
		"-rtsp_transport", transport, "-i", url, "-c", "copy", "-f", "null", "-",
		"-progress", "pipe:1", "-stats_period", strconv.FormatFloat(progressPeriod.Seconds(), 'f', -1, 64))
	if err != nil {
		return nil, err
	}
	b.track(p)
	return &reader{p}, nil
}

func lastInt(re *regexp.Regexp, s string) int64 {
	m := re.FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return n
}

func (r *reader) frames() int64 { return lastInt(progFrameRE, r.Output()) }
