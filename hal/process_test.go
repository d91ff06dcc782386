package hal

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kballard/go-shellquote"

	"github.com/camgate/camgate/internal/testlog"
)

// TestMain lets the test binary play the commands the tests start.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "cgtest-") {
		os.Exit(helper(os.Args[1], os.Args[2:]))
	}
	os.Exit(m.Run())
}

func helper(mode string, args []string) int {
	switch mode {
	case "cgtest-echo": // prints its arguments and MTX_PATH, one a line
		for _, a := range args {
			fmt.Println("arg:" + a)
		}
		fmt.Println("env:" + os.Getenv("MTX_PATH"))
		return 0
	case "cgtest-child": // sleeps; with "polite", says bye on SIGTERM; with "stubborn", ignores it
		if len(args) > 0 && args[0] == "stubborn" {
			signal.Ignore(syscall.SIGTERM)
		}
		term := make(chan os.Signal, 1)
		if len(args) > 0 && args[0] == "polite" {
			signal.Notify(term, syscall.SIGTERM)
		}
		fmt.Printf("child %d\n", os.Getpid())
		select {
		case <-term:
			fmt.Println("bye")
			return 0
		case <-time.After(time.Minute):
			return 1
		}
	case "cgtest-parent": // starts a child, prints its pid; "exit" exits at once, else waits
		c := exec.Command(os.Args[0], append([]string{"cgtest-child"}, args[1:]...)...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fmt.Println("start:", err)
			return 2
		}
		fmt.Printf("grandchild %d\n", c.Process.Pid)
		if len(args) > 0 && args[0] == "exit" {
			return 0
		}
		_ = c.Wait()
		return 0
	}
	return 3
}

// waitLine waits for a line starting with prefix and returns the rest.
func waitLine(t *testing.T, out *testlog.Buffer, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), prefix); ok {
				return rest
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q line within 10s; output:\n%s", prefix, out.String())
	return ""
}

func self() string { return shellquote.Join(os.Args[0]) }

func start(t *testing.T, line string, out *testlog.Buffer) *ProcessTree {
	t.Helper()
	pt, err := StartProcessTree(ProcessSpec{Line: line, Vars: map[string]string{"MTX_PATH": "cam1", "RTSP_PORT": "8554"}, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pt.Stop(0) })
	return pt
}

func TestProcessTreeSplitsAndExpandsAsMediaMTX(t *testing.T) {
	out := &testlog.Buffer{}
	pt := start(t, self()+` cgtest-echo "two words" $MTX_PATH ${RTSP_PORT}x 'q$MTX_PATH' a\ b`, out)
	<-pt.Exited()
	pt.Stop(time.Second)
	if err := pt.Err(); err != nil {
		t.Fatalf("exit: %v\n%s", err, out.String())
	}
	want := "arg:two words\narg:cam1\narg:8554x\narg:qcam1\narg:a b\nenv:cam1\n"
	if got := strings.ReplaceAll(out.String(), "\r\n", "\n"); got != want {
		t.Fatalf("output\n%q\nwant\n%q", got, want)
	}
}

func TestProcessTreeStopEndsGrandchildren(t *testing.T) {
	out := &testlog.Buffer{}
	pt := start(t, self()+" cgtest-parent wait", out)
	gc, _ := strconv.Atoi(waitLine(t, out, "grandchild "))
	waitLine(t, out, "child ")
	if !alive(gc) {
		t.Fatalf("grandchild %d not running", gc)
	}
	pt.Stop(2 * time.Second)
	waitGone(t, pt.Pid())
	waitGone(t, gc)
}

// A command that exits leaving a child behind: Stop still ends the child.
func TestProcessTreeStopAfterMainExited(t *testing.T) {
	out := &testlog.Buffer{}
	pt := start(t, self()+" cgtest-parent exit", out)
	gc, _ := strconv.Atoi(waitLine(t, out, "grandchild "))
	<-pt.Exited()
	waitLine(t, out, "child ")
	if !alive(gc) {
		t.Fatalf("grandchild %d not running after its parent exited", gc)
	}
	pt.Stop(2 * time.Second)
	waitGone(t, gc)
}

func TestProcessTreeStartErrors(t *testing.T) {
	if _, err := StartProcessTree(ProcessSpec{Line: "  "}); !errors.Is(err, ErrEmptyCommand) {
		t.Errorf("empty line: %v", err)
	}
	if _, err := StartProcessTree(ProcessSpec{Line: `ffmpeg -i "unclosed`}); err == nil || !strings.Contains(err.Error(), "command line") {
		t.Errorf("open quote: %v", err)
	}
	if err := CheckCommandLine(`ffmpeg -i 'unclosed`); err == nil {
		t.Error("CheckCommandLine accepted an open quote")
	}
	if err := CheckCommandLine(`ffmpeg -f dshow -i video="USB Camera" -f rtsp rtsp://localhost:$RTSP_PORT/$MTX_PATH`); err != nil {
		t.Errorf("CheckCommandLine: %v", err)
	}
	if _, err := StartProcessTree(ProcessSpec{Line: "camgate-no-such-program-x1"}); err == nil {
		t.Error("missing program started")
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running 10s after Stop", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
