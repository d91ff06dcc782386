package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kballard/go-shellquote"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/streaming"
)

// TestMain lets the test binary play the commands.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "cgtest-") {
		os.Exit(helper(os.Args[1], os.Args[2:]))
	}
	goleak.VerifyTestMain(m)
}

func helper(mode string, args []string) int {
	switch mode {
	case "cgtest-env":
		fmt.Printf("path=%s port=%s g1=%s arg=%s\n", os.Getenv("MTX_PATH"), os.Getenv("RTSP_PORT"), os.Getenv("G1"), strings.Join(args, ","))
		time.Sleep(time.Minute)
	case "cgtest-exit":
		fmt.Println("run")
		code, _ := strconv.Atoi(args[0])
		return code
	}
	return 3
}

type logBuf struct{ testlog.Buffer }

type entry struct {
	Level, Message, Output, Error string
	ExitCode, LinesSuppressed     int
	BytesCut                      int
}

func (l *logBuf) entries() []entry {
	var out []entry
	for _, line := range strings.Split(l.String(), "\n") {
		var e entry
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

func (l *logBuf) count(msg string) int {
	n := 0
	for _, e := range l.entries() {
		if e.Message == msg {
			n++
		}
	}
	return n
}

func (l *logBuf) waitFor(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.count(msg) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d %q within 10s; log:\n%s", n, msg, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func self() string { return shellquote.Join(os.Args[0]) }

func newRunner(logs *logBuf) *Runner {
	return New(Options{RTSPPort: "8554", RestartPause: 10 * time.Millisecond, StopGrace: time.Second, Log: zerolog.New(logs).Level(zerolog.DebugLevel)})
}

// The command gets MediaMTX's variables in its environment and its line;
// its output is logged; cancelling stops it.
func TestRunGivesMediaMTXEnvironment(t *testing.T) {
	logs := &logBuf{}
	r := newRunner(logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c := streaming.Command{Hook: streaming.HookRunOnDemand, Path: "cam7", Line: self() + " cgtest-env $MTX_PATH:$RTSP_PORT", Vars: map[string]string{"G1": "7"}}
	go func() { done <- r.Run(ctx, c) }()
	logs.waitFor(t, "command output", 1)
	var out string
	for _, e := range logs.entries() {
		if e.Message == "command output" {
			out = e.Output
		}
	}
	if out != "path=cam7 port=8554 g1=7 arg=cam7:8554" {
		t.Fatalf("output %q", out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if logs.count("command stopped") != 1 {
		t.Fatalf("no stop logged:\n%s", logs.String())
	}
}

// With Restart a command that dies is started again until ctx ends.
func TestRunRestartsOnDeath(t *testing.T) {
	logs := &logBuf{}
	r := newRunner(logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, streaming.Command{Hook: streaming.HookRunOnInit, Path: "cam", Line: self() + " cgtest-exit 3", Restart: true})
	}()
	logs.waitFor(t, "command started", 3)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, e := range logs.entries() {
		if e.Message == "command exited" && e.ExitCode != 3 {
			t.Fatalf("exit code %d logged, want 3", e.ExitCode)
		}
	}
}

// Without Restart, Run returns the exit status.
func TestRunWithoutRestartReturnsExit(t *testing.T) {
	logs := &logBuf{}
	err := newRunner(logs).Run(context.Background(), streaming.Command{Hook: streaming.HookRunOnDemand, Path: "cam", Line: self() + " cgtest-exit 5"})
	if err == nil || !strings.Contains(err.Error(), "exit status 5") {
		t.Fatalf("Run: %v", err)
	}
	err = newRunner(logs).Run(context.Background(), streaming.Command{Hook: streaming.HookRunOnDemand, Path: "cam", Line: "camgate-no-such-program-x1"})
	if err == nil || logs.count("command did not start") != 1 {
		t.Fatalf("missing program: %v", err)
	}
}

func TestLineLog(t *testing.T) {
	logs := &logBuf{}
	l := newLineLog(zerolog.New(logs).Level(zerolog.DebugLevel), rate.NewLimiter(rate.Inf, 1))
	fmt.Fprint(l, "Input #0, from 'rtsp://admin:hunter2@10.0.0.64/s':\r\n")
	fmt.Fprint(l, "frame=  10 fps=0.0\rframe=  20 fps=19\r")
	fmt.Fprint(l, strings.Repeat("x", 3000)+"\n")
	fmt.Fprint(l, "partial ")
	fmt.Fprint(l, "line")
	l.Flush()
	es := logs.entries()
	if len(es) != 5 {
		t.Fatalf("%d entries: %+v", len(es), es)
	}
	if es[0].Output != "Input #0, from 'rtsp://admin:***@10.0.0.64/s':" || es[0].Level != "info" {
		t.Errorf("redaction: %+v", es[0])
	}
	if es[1].Level != "debug" || es[1].Output != "frame=  10 fps=0.0" || es[2].Level != "debug" {
		t.Errorf("progress lines: %+v %+v", es[1], es[2])
	}
	if len(es[3].Output) != maxLine || es[3].BytesCut != 3000-maxLine {
		t.Errorf("long line: %d bytes, cut %d", len(es[3].Output), es[3].BytesCut)
	}
	if es[4].Output != "partial line" {
		t.Errorf("flushed %q", es[4].Output)
	}

	// Over the rate, lines are counted and the count comes with the next.
	logs = &logBuf{}
	lim := rate.NewLimiter(0, 2)
	l = newLineLog(zerolog.New(logs).Level(zerolog.InfoLevel), lim)
	fmt.Fprint(l, "progress\r") // debug, off: neither logged nor counted
	for i := range 5 {
		fmt.Fprintf(l, "line %d\n", i)
	}
	lim.SetLimit(rate.Inf)
	fmt.Fprint(l, "after\n")
	es = logs.entries()
	if len(es) != 3 || es[2].Output != "after" || es[2].LinesSuppressed != 3 {
		t.Fatalf("rate bound: %+v", es)
	}
}
