// Command fleetsim measures the fleet side at scale: N simulated agents
// (package sim: the real uplink client, outbox and bbolt store, simulated
// streaming and updates) in this one process, against a mosquitto it
// starts on 127.0.0.1, driven with the real `camgate fleet` binary.
//
// Steps, each measured: the connect storm (all agents started at once),
// the idle uplink traffic per agent on the wire (the broker's $SYS byte
// counters), `camgate fleet ls`, a desired-state change on every agent
// (`fleet desired set --all -wait`), and a rollout with a 1 % canary whose
// second wave has agents rolling back, which halts it, then its resume to
// the end. It prints a Markdown report.
//
//	go run ./internal/cmd/fleetsim -n 1000
//	go run ./internal/cmd/fleetsim -n 10000 -idle 2m
//
// The agents' data directories are under -dir (default: a new directory
// in /dev/shm where it exists): one bbolt file per agent, so that the
// fsync of each health append costs memory, not the disk, and the figures
// are the broker's and the fleet tools'. Each agent holds a socket and a
// bbolt file (a file descriptor and a small mmap): fleetsim raises its
// open-file limit, which mosquitto inherits.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/internal/interop"
	"github.com/camgate/camgate/uplink/fleet"
)

type options struct {
	n              int
	health         time.Duration
	idle           time.Duration
	paths          int
	updateTime     time.Duration
	dir            string
	mosquitto      string
	camgate        string
	steps          string
	keep           bool
	maxWaveTimeout time.Duration
	procs          int

	// -worker: this process hosts agents from..to-1 for a parent.
	worker   bool
	broker   string
	from, to int
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "simulated agents")
	flag.DurationVar(&o.health, "health", 30*time.Second, "health interval of the agents")
	flag.DurationVar(&o.idle, "idle", 0, "idle measurement window (default: 4 health intervals)")
	flag.IntVar(&o.paths, "paths", 2, "paths in each agent's health")
	flag.DurationVar(&o.updateTime, "update-time", 5*time.Second, "how long a simulated update takes")
	flag.StringVar(&o.dir, "dir", "", "where the agents' data directories go (default: a new directory in /dev/shm or the temp dir)")
	flag.StringVar(&o.mosquitto, "mosquitto", "mosquitto", "mosquitto binary")
	flag.StringVar(&o.camgate, "camgate", "", "camgate binary for the fleet commands (default: built from this tree)")
	flag.StringVar(&o.steps, "steps", "connect,idle,ls,desired,rollout", "steps to run, in this order")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directories")
	flag.DurationVar(&o.maxWaveTimeout, "wave-timeout", 5*time.Minute, "rollout wave timeout")
	flag.IntVar(&o.procs, "procs", 0, "processes hosting the agents (default: 1, more when the open-file limit cannot hold them all)")
	flag.BoolVar(&o.worker, "worker", false, "internal: host agents -from to -to for a parent fleetsim")
	flag.StringVar(&o.broker, "broker", "", "internal: broker URL of a worker")
	flag.IntVar(&o.from, "from", 0, "internal: first agent of a worker")
	flag.IntVar(&o.to, "to", 0, "internal: last agent of a worker, plus one")
	flag.Parse()
	if o.idle <= 0 {
		o.idle = 4 * o.health
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.worker {
		if err := runWorker(ctx, o, o.broker, o.from, o.to); err != nil {
			fmt.Fprintln(os.Stderr, "fleetsim worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

// bench is one run.
type bench struct {
	o      options
	dir    string
	broker string
	mq     *interop.Proc
	sys    *sysMonitor
	bin    string
	// The agents run here (local) or in worker processes.
	local   *localHost
	workers []*workerHost
	rows    []row
	notes   []string
}

// row is one line of the report.
type row struct{ what, value, target string }

func (b *bench) add(what, value, target string) {
	b.rows = append(b.rows, row{what, value, target})
	fmt.Fprintf(os.Stderr, "fleetsim: %s: %s\n", what, value)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fleetsim: "+format+"\n", args...)
}

func run(ctx context.Context, o options) error {
	b := &bench{o: o}
	var err error
	if b.dir, err = dataDir(o.dir); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(b.dir)
	}
	// A socket and a bbolt file per agent, some slack for the rest.
	limit, err := raiseFileLimit(uint64(2*o.n + 1024))
	if err != nil {
		return err
	}
	perProc := max(1, (int(limit)-1024)/2)
	auto := o.procs <= 0
	if auto {
		o.procs = (o.n + perProc - 1) / perProc
		b.o.procs = o.procs
	}
	if o.n/o.procs > perProc {
		return fmt.Errorf("open-file limit %d holds %d agents per process; use -procs %d or more", limit, perProc, (o.n+perProc-1)/perProc)
	}
	if o.procs > 1 && auto {
		b.notes = append(b.notes, fmt.Sprintf("The agents ran in %d fleetsim processes of %d agents: the open-file limit is %d "+
			"(a hard limit this machine does not let us raise) and each agent holds two descriptors, its socket and its bbolt file.", o.procs, o.n/o.procs, limit))
	}
	b.bin = o.camgate
	if b.bin == "" {
		b.logf("building camgate")
		if b.bin, err = interop.BuildAgent(b.dir, false); err != nil {
			return err
		}
	}
	if b.mq, b.broker, err = startMosquitto(b.dir, o.mosquitto); err != nil {
		return err
	}
	defer b.mq.Stop(10 * time.Second)
	if b.sys, err = newSysMonitor(b.broker); err != nil {
		return err
	}
	defer b.sys.close()
	defer b.stopAgents()

	started := time.Now()
	for _, step := range strings.Split(o.steps, ",") {
		var err error
		switch strings.TrimSpace(step) {
		case "connect":
			err = b.connect(ctx)
		case "idle":
			err = b.idle(ctx)
		case "ls":
			err = b.ls(ctx)
		case "desired":
			err = b.desired(ctx)
		case "rollout":
			err = b.rollout(ctx)
		default:
			err = fmt.Errorf("unknown step %q", step)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
	}
	fmt.Print(b.markdown(time.Since(started)))
	return nil
}

func dataDir(dir string) (string, error) {
	if dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	return os.MkdirTemp(base, "fleetsim-")
}

// rolloutLayout is where the benchmark's rollout puts its waves: a 1 %
// canary, then waves doubling; in the second wave every tenth agent, from
// its first, rolls back, one more than -max-failures allows.
func rolloutLayout(n int) (canary int, failing func(i int) bool, maxFailures int) {
	canary = max(1, int(math.Ceil(float64(n)/100)))
	failing = func(i int) bool { return i >= canary && i < 3*canary && (i-canary)%10 == 0 }
	failures := (2*canary + 9) / 10
	return canary, failing, failures - 1
}

// connect opens the stores, then starts every agent at once and measures
// until all are connected.
func (b *bench) connect(ctx context.Context) error {
	n, procs := b.o.n, b.o.procs
	b.logf("opening %d agents' stores in %d process(es)", n, procs)
	if procs == 1 {
		h, err := openLocal(b.o, b.broker, b.dir, 0, n)
		if err != nil {
			return err
		}
		b.local = h
	} else {
		for k := range procs {
			w, err := startWorker(b.o, b.broker, b.dir, k*n/procs, (k+1)*n/procs)
			if err != nil {
				return err
			}
			b.workers = append(b.workers, w)
		}
		for _, w := range b.workers {
			if err := w.expect(ctx, "opened"); err != nil {
				return err
			}
		}
	}
	mq0, _ := sampleProc(b.mq.PID())
	peak := trackPeak(b.mq.PID())
	start := time.Now()
	if b.local != nil {
		if err := b.local.start(ctx); err != nil {
			return err
		}
	} else {
		for _, w := range b.workers {
			if _, err := io.WriteString(w.in, "go\n"); err != nil {
				return err
			}
		}
		for _, w := range b.workers {
			if err := w.expect(ctx, "connected"); err != nil {
				return err
			}
		}
	}
	took := time.Since(start)
	mq1, _ := sampleProc(b.mq.PID())
	mqPeak := peak.end()
	b.add("connect storm: all agents started at once, until every one is connected", fmt.Sprintf("%.1f s", took.Seconds()), "")
	b.add("broker during the storm: CPU, RSS peak", fmt.Sprintf("%.0f %% of one core, %.0f MB", cpuPct(mq0, mq1), mb(mqPeak)), "")
	if s, err := b.simSample(); err == nil {
		b.add("simulated agents after the storm: RSS of the fleetsim process(es)", fmt.Sprintf("%.0f MB (%.0f kB per agent)", mb(s.rss), float64(s.rss)/1024/float64(n)), "")
	}
	return nil
}

// simSample adds up the samples of the processes running agents.
func (b *bench) simSample() (procSample, error) {
	pids := []int{os.Getpid()}
	for _, w := range b.workers {
		pids = append(pids, w.cmd.Process.Pid)
	}
	var sum procSample
	for _, pid := range pids {
		s, err := sampleProc(pid)
		if err != nil {
			return procSample{}, err
		}
		sum.at, sum.cpu, sum.rss = s.at, sum.cpu+s.cpu, sum.rss+s.rss
	}
	return sum, nil
}

// idle lets every agent publish health at least once, then measures the
// broker's byte counters over the window.
func (b *bench) idle(ctx context.Context) error {
	if b.local == nil && b.workers == nil {
		return fmt.Errorf("run the connect step first")
	}
	b.logf("settling for one health interval (%s)", b.o.health)
	if err := sleep(ctx, b.o.health+5*time.Second); err != nil {
		return err
	}
	doc, err := b.healthDoc()
	if err != nil {
		return err
	}
	b.logf("idle window of %s", b.o.idle)
	r0, err := b.sys.fresh(ctx, sysBytesReceived)
	if err != nil {
		return err
	}
	s0, err := b.sys.fresh(ctx, sysBytesSent)
	if err != nil {
		return err
	}
	m0, _ := b.sys.fresh(ctx, sysMsgsReceived)
	mq0, _ := sampleProc(b.mq.PID())
	self0, _ := b.simSample()
	t0 := time.Now()
	if err := sleep(ctx, b.o.idle); err != nil {
		return err
	}
	r1, err := b.sys.fresh(ctx, sysBytesReceived)
	if err != nil {
		return err
	}
	s1, _ := b.sys.fresh(ctx, sysBytesSent)
	m1, _ := b.sys.fresh(ctx, sysMsgsReceived)
	secs := time.Since(t0).Seconds()
	mq1, _ := sampleProc(b.mq.PID())
	self1, _ := b.simSample()
	n := float64(b.o.n)
	up := (r1 - r0) / n / secs
	b.add(fmt.Sprintf("uplink bytes per agent per second, idle, health every %s (broker $SYS bytes received)", b.o.health),
		fmt.Sprintf("%.1f B/s", up), idleTarget(b.o.health, up))
	b.add("downlink bytes per agent per second, idle (PUBACKs, PINGRESPs)", fmt.Sprintf("%.1f B/s", (s1-s0)/n/secs), "")
	b.add("messages per agent per second, idle", fmt.Sprintf("%.3f", (m1-m0)/n/secs), "")
	b.add("health document", fmt.Sprintf("%d bytes of JSON (%d paths, 3 listeners, 1 interface)", len(doc), b.o.paths), "")
	b.add("broker idle: CPU, RSS", fmt.Sprintf("%.1f %% of one core, %.0f MB", cpuPct(mq0, mq1), mb(mq1.rss)), "")
	b.add("simulated agents idle (fleetsim process(es)): CPU, RSS", fmt.Sprintf("%.1f %% of one core, %.0f MB", cpuPct(self0, self1), mb(self1.rss)), "")
	return nil
}

// fleet runs the camgate binary's fleet command and returns its output
// and how long it took.
func (b *bench) fleet(ctx context.Context, args ...string) (string, string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"fleet", "-broker", b.broker}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	return out.String(), errOut.String(), time.Since(start), err
}

func (b *bench) ls(ctx context.Context) error {
	var times []time.Duration
	for range 3 {
		out, errOut, took, err := b.fleet(ctx, "ls")
		if err != nil {
			return fmt.Errorf("camgate fleet ls: %v: %s", err, errOut)
		}
		if lines := strings.Count(out, "\n") - 1; lines != b.o.n {
			return fmt.Errorf("camgate fleet ls listed %d agents, want %d", lines, b.o.n)
		}
		times = append(times, took)
	}
	slices.Sort(times)
	b.add(fmt.Sprintf("`camgate fleet ls` of %d agents (median of 3, whole process)", b.o.n),
		fmt.Sprintf("%.2f s (%.2f–%.2f)", times[1].Seconds(), times[0].Seconds(), times[2].Seconds()), verdict(times[1] < 3*time.Second, "< 3 s"))
	return nil
}

func (b *bench) desired(ctx context.Context) error {
	file := filepath.Join(b.dir, "desired.yml")
	if err := os.WriteFile(file, []byte("paths:\n  cam9: {source: demo}\nlabels: {bench: one}\n"), 0o600); err != nil {
		return err
	}
	mq0, _ := sampleProc(b.mq.PID())
	out, errOut, took, err := b.fleet(ctx, "desired", "set", "--all", file, "-wait", "10m")
	mq1, _ := sampleProc(b.mq.PID())
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d agents: %d converged", b.o.n, b.o.n)) {
		return fmt.Errorf("camgate fleet desired set: %v\n%s%s", err, tail(out, 5), errOut)
	}
	b.add(fmt.Sprintf("desired-state change on all %d agents: `fleet desired set --all FILE -wait` until every report is in", b.o.n),
		fmt.Sprintf("%.1f s", took.Seconds()), "")
	b.add("broker during the desired-state change: CPU", fmt.Sprintf("%.0f %% of one core", cpuPct(mq0, mq1)), "")
	return nil
}

func (b *bench) rollout(ctx context.Context) error {
	canary, _, maxFailures := rolloutLayout(b.o.n)
	sig := filepath.Join(b.dir, "camgate.minisig")
	if err := os.WriteFile(sig, []byte("untrusted comment: simulated\nRUQ\ntrusted comment: simulated\nAAAA\n"), 0o600); err != nil {
		return err
	}
	args := []string{"rollout", "--all", "-url", "https://releases.invalid/camgate_2.0.0_linux_arm64.tar.gz",
		"-sha256", strings.Repeat("ab", 32), "-sig", sig, "-version", "v2.0.0", "-canary", "1%",
		"-max-failures", fmt.Sprint(maxFailures), "-wave-timeout", b.o.maxWaveTimeout.String(), "-id", "bench-rollout"}
	mq0, _ := sampleProc(b.mq.PID())
	out, errOut, took, err := b.fleet(ctx, args...)
	mq1, _ := sampleProc(b.mq.PID())
	if err == nil || !strings.Contains(errOut, "halted") {
		return fmt.Errorf("the rollout did not halt: %v\n%s%s", err, tail(out, 10), errOut)
	}
	c, err := fleet.Dial(ctx, fleet.Options{Broker: b.broker})
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.LoadRollout(ctx, "bench-rollout")
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("rollout, canary 1 %% (%d), waves doubling, every 10th agent of wave 2 rolls back, -max-failures %d: until it halts", canary, maxFailures),
		fmt.Sprintf("%.1f s, halted in wave %d after %d failures; %s", took.Seconds(), len(r.Waves), r.Failures(), waveTimes(r)), "halts by itself")
	b.add("broker during the rollout: CPU", fmt.Sprintf("%.0f %% of one core", cpuPct(mq0, mq1)), "")

	out, errOut, took, err = b.fleet(ctx, "rollout", "resume", "bench-rollout", "-max-failures", fmt.Sprint(b.o.n))
	if err != nil {
		return fmt.Errorf("resume: %v\n%s%s", err, tail(out, 10), errOut)
	}
	if r, err = c.LoadRollout(ctx, "bench-rollout"); err != nil {
		return err
	}
	committed := 0
	for _, p := range r.Progress {
		if p.State == fleet.RolloutCommitted {
			committed++
		}
	}
	b.add(fmt.Sprintf("the same rollout resumed to its end over all %d agents (simulated update: %s, then a reconnect)", b.o.n, b.o.updateTime),
		fmt.Sprintf("%.1f s, %d waves, %d committed, %d rolled back; %s", took.Seconds(), len(r.Waves), committed, r.Failures(), waveTimes(r)), "")
	return nil
}

// waveTimes lists how long each wave took.
func waveTimes(r *fleet.Rollout) string {
	var parts []string
	for i, w := range r.Waves {
		d := "-"
		if w.EndedAt != nil {
			d = fmt.Sprintf("%.1f s", w.EndedAt.Sub(w.StartedAt).Seconds())
		}
		parts = append(parts, fmt.Sprintf("wave %d: %d agents %s", i+1, w.Size, d))
	}
	return strings.Join(parts, ", ")
}

func (b *bench) stopAgents() {
	if b.local != nil {
		b.logf("stopping the agents")
		b.local.close()
	}
	for _, w := range b.workers {
		w.stop()
	}
}

// healthDoc is the health document of an agent as the benchmark's agents
// publish it (a fresh one, never run).
func (b *bench) healthDoc() ([]byte, error) {
	a, err := sim.New(sim.Options{Broker: b.broker, ID: "sim-doc", Dir: filepath.Join(b.dir, "doc"), Paths: b.o.paths, Log: zerolog.Nop()})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	return json.Marshal(a.HealthDoc())
}

func (b *bench) markdown(took time.Duration) string {
	var s strings.Builder
	fmt.Fprintf(&s, "### fleetsim, %d agents, health every %s (%s)\n\n", b.o.n, b.o.health, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&s, "- Machine: %d CPUs, %s, %s/%s, %s; broker: %s\n", runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH, runtime.Version(), mosquittoVersion(b.o.mosquitto))
	fmt.Fprintf(&s, "- Command: `go run ./internal/cmd/fleetsim %s` (took %s)\n\n", strings.Join(os.Args[1:], " "), took.Round(time.Second))
	s.WriteString("| measured | value | target |\n|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&s, "| %s | %s | %s |\n", r.what, r.value, r.target)
	}
	for _, n := range b.notes {
		fmt.Fprintf(&s, "\n%s\n", n)
	}
	return s.String()
}

// idleTarget is the verdict on the idle target, set for 30 s health.
func idleTarget(health time.Duration, up float64) string {
	if health != 30*time.Second {
		return ""
	}
	return verdict(up < 100, "< 100 B/s")
}

func verdict(ok bool, target string) string {
	if ok {
		return target + ": met"
	}
	return target + ": **missed**"
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown memory"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb float64
			fmt.Sscan(v, &kb)
			return fmt.Sprintf("%.1f GiB RAM", kb/(1<<20))
		}
	}
	return "unknown memory"
}

func mosquittoVersion(bin string) string {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
