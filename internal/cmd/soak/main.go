// Command soak is camgate's soak harness (`task soak`). It builds the agent
// and runs it as a child process against simulated cameras that flap (go
// away and come back at random intervals), RTSP readers over TCP and UDP
// that come and go, an in-process MQTT broker that drops the agent's
// connection now and then, and a fleet command every second (paths.add,
// paths.update, paths.remove, path.restart, status, ping). Every -interval
// it samples the agent's RSS and open fds (/proc) and its goroutines, heap
// and outbox depth (/metrics); after the run it checks that the uplink
// reconnects, the agent still answers, every camera plays again, the
// outbox drains and SIGTERM stops the agent cleanly, and fails
// when a figure grows after the warm-up: the least-squares slope, less two
// standard errors, above the figure's tolerance (per hour, or in a short
// run a fixed floor over the judged span: what one reader or one camera
// pull moves the figure by). samples.csv and
// report.md go to -out; the report is printed too.
//
// Loopback only. The run is bounded by -duration plus the final checks
// (at most 4 minutes), and every process and goroutine it started is
// stopped on exit, SIGINT and SIGTERM included.
//
// Short run (CI):
//
//	go run ./internal/cmd/soak -duration 3m -interval 10s -warmup 40s -flap-every 20s -drop-every 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration  time.Duration
	interval  time.Duration
	warmup    time.Duration
	cameras   int
	readers   int
	flapEvery time.Duration
	outageMax time.Duration
	dropEvery time.Duration
	cmdEvery  time.Duration
	bin       string
	out       string
	seed      int64

	tolRSS, tolRSSFile, tolHeap, tolGoroutines, tolFDs, tolOutbox float64 // per hour
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", time.Hour, "how long the load runs")
	fs.DurationVar(&o.interval, "interval", time.Minute, "time between samples")
	fs.DurationVar(&o.warmup, "warmup", 0, "samples before this are not judged (default: a sixth of -duration, at least 2 intervals)")
	fs.IntVar(&o.cameras, "cameras", 4, "simulated cameras (paths cam0..; even ones always-on over TCP, odd ones on-demand over UDP)")
	fs.IntVar(&o.readers, "readers", 6, "RTSP readers coming and going at once (TCP and UDP)")
	fs.DurationVar(&o.flapEvery, "flap-every", 45*time.Second, "mean time between a camera's outages")
	fs.DurationVar(&o.outageMax, "outage-max", 15*time.Second, "longest outage of a camera (each lasts 1 s to this)")
	fs.DurationVar(&o.dropEvery, "drop-every", 90*time.Second, "mean time between the broker dropping the agent's connection")
	fs.DurationVar(&o.cmdEvery, "cmd-every", time.Second, "time between fleet commands")
	fs.StringVar(&o.bin, "bin", "", "camgate binary (default: build one like task build does)")
	fs.StringVar(&o.out, "out", "", "directory for samples.csv, report.md and the logs (default: a temp dir, kept on failure)")
	fs.Int64Var(&o.seed, "seed", 0, "random seed (default: from the clock; the report names it)")
	fs.Float64Var(&o.tolRSS, "tol-rss", 10, "growth of anonymous RSS tolerated, MB per hour")
	fs.Float64Var(&o.tolRSSFile, "tol-rss-file", 50, "growth of file-backed RSS and of camgate.db tolerated, MB per hour (both stop at the outbox and journal bounds)")
	fs.Float64Var(&o.tolHeap, "tol-heap", 10, "Go heap growth tolerated, MB per hour")
	fs.Float64Var(&o.tolGoroutines, "tol-goroutines", 50, "goroutine growth tolerated, per hour")
	fs.Float64Var(&o.tolFDs, "tol-fds", 50, "open file growth tolerated, per hour")
	fs.Float64Var(&o.tolOutbox, "tol-outbox", 1000, "outbox growth tolerated, messages per hour")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.warmup == 0 {
		o.warmup = max(o.duration/6, 2*o.interval)
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	switch {
	case o.duration <= 0 || o.interval <= 0 || o.cmdEvery <= 0:
		return o, errors.New("-duration, -interval and -cmd-every must be positive")
	case o.warmup < 0 || o.warmup >= o.duration:
		return o, errors.New("-warmup must be shorter than -duration")
	case (o.duration-o.warmup)/o.interval < 3:
		return o, errors.New("fewer than 3 samples after the warm-up: shorten -interval or -warmup")
	case o.cameras < 1 || o.readers < 0:
		return o, errors.New("-cameras must be at least 1, -readers not negative")
	case o.flapEvery <= 0 || o.outageMax < time.Second || o.dropEvery <= 0:
		return o, errors.New("-flap-every and -drop-every must be positive, -outage-max at least 1s")
	}
	return o, nil
}
