package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one look at the agent. Figures the agent could not give are NaN.
type sample struct {
	at    time.Duration // since the load started
	rssMB float64
	// anonMB is the anonymous part of RSS (the Go heap, stacks, runtime):
	// a leak shows here. fileMB is the file-backed part, mostly the
	// executable and bbolt's map of camgate.db, which follows the file's
	// size (bounded by the outbox and journal bounds) and the kernel can
	// drop at any time.
	anonMB, fileMB float64
	dbMB           float64 // size of camgate.db
	heapMB         float64
	goroutines     float64
	fds            float64
	outbox         float64
	connected      float64 // camgate_uplink_connected
	cpuPct         float64 // utime+stime since the previous sample, % of one core
	cpuTicks       uint64
	readers        float64 // sum of camgate_path_readers
	load           counterSnapshot
}

func (s sample) String() string {
	return fmt.Sprintf("t=%v rss %.1f MB, heap %.1f MB, %v goroutines, %v fds, outbox %v, cpu %.1f %%, %v readers; commands %d ok/%d refused/%d unanswered, %d flaps, %d drops",
		s.at.Round(time.Second), s.rssMB, s.heapMB, s.goroutines, s.fds, s.outbox, s.cpuPct, s.readers,
		s.load.cmdOK, s.load.cmdRefused, s.load.cmdUnanswered, s.load.flaps, s.load.drops)
}

// sample reads /proc and /metrics; prev (nil at first) gives the CPU base.
func (h *harness) sample(prev *sample) (sample, error) {
	pid := h.agent.PID()
	s := sample{at: time.Since(h.loadStart), load: h.snapshot()}
	rss, err := procStatusKB(pid, "VmRSS:")
	if err != nil {
		return s, fmt.Errorf("%w: %w", errNoAgent, err)
	}
	s.rssMB = float64(rss) / 1024
	s.anonMB, s.fileMB, s.dbMB = math.NaN(), math.NaN(), math.NaN()
	if kb, err := procStatusKB(pid, "RssAnon:"); err == nil {
		s.anonMB = float64(kb) / 1024
	}
	if kb, err := procStatusKB(pid, "RssFile:"); err == nil {
		s.fileMB = float64(kb) / 1024
	}
	if st, err := os.Stat(h.dbFile); err == nil {
		s.dbMB = float64(st.Size()) / (1 << 20)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, fmt.Errorf("%w: %w", errNoAgent, err)
	}
	s.fds = float64(len(fds))
	if s.cpuTicks, err = cpuTicks(pid); err != nil {
		return s, fmt.Errorf("%w: %w", errNoAgent, err)
	}
	s.cpuPct = math.NaN()
	if prev != nil && s.at > prev.at {
		s.cpuPct = float64(s.cpuTicks-prev.cpuTicks) / clkTck / (s.at - prev.at).Seconds() * 100
	}
	s.heapMB, s.goroutines, s.outbox, s.connected, s.readers = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if m, err := scrape(h.api); err == nil {
		s.heapMB = m["camgate_go_heap_bytes"] / (1 << 20)
		s.goroutines = m["camgate_go_goroutines"]
		s.outbox = m["camgate_outbox_depth"]
		s.connected = m["camgate_uplink_connected"]
		s.readers = m["camgate_path_readers"]
	} else {
		h.logf("metrics: %v", err)
	}
	return s, nil
}

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture camgate targets.
const clkTck = 100

func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

func procStatusKB(pid int, key string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

// scrape reads the agent's /metrics: each family's samples summed over
// their labels.
func scrape(api string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(api + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 8<<20))
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			if j := strings.LastIndexByte(line, '}'); j > i {
				rest = line[j+1:]
			}
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// csvFile writes one line per sample as it is taken, so a run cut short
// keeps its figures.
type csvFile struct{ f *os.File }

const csvHeader = "elapsed_s,rss_mb,rss_anon_mb,rss_file_mb,db_mb,heap_mb,goroutines,fds,outbox_depth,uplink_connected,cpu_pct,readers,cmds_ok,cmds_refused,cmds_unanswered,camera_flaps,broker_drops,reader_sessions,reader_failures\n"

func newCSV(path string) (*csvFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(csvHeader); err != nil {
		f.Close()
		return nil, err
	}
	return &csvFile{f: f}, nil
}

func (c *csvFile) write(s sample) {
	fmt.Fprintf(c.f, "%.0f,%.2f,%.2f,%.2f,%.2f,%.2f,%v,%v,%v,%v,%.2f,%v,%d,%d,%d,%d,%d,%d,%d\n",
		s.at.Seconds(), s.rssMB, s.anonMB, s.fileMB, s.dbMB, s.heapMB, s.goroutines, s.fds, s.outbox, s.connected, s.cpuPct, s.readers,
		s.load.cmdOK, s.load.cmdRefused, s.load.cmdUnanswered, s.load.flaps, s.load.drops,
		s.load.readerSessions, s.load.readerFailures)
}

func (c *csvFile) close() { c.f.Close() }
