package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
)

// localHost runs the simulated agents from..to-1 in this process.
type localHost struct {
	agents []*sim.Agent
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// openLocal opens the agents' stores (8 at a time); nothing connects yet.
func openLocal(o options, broker, dir string, from, to int) (*localHost, error) {
	_, failing, _ := rolloutLayout(o.n)
	h := &localHost{agents: make([]*sim.Agent, to-from)}
	errs := make(chan error, to-from)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("sim-%05d", i)
			outcome := func(string) sim.Outcome { return sim.Committed }
			if failing(i) {
				outcome = func(string) sim.Outcome { return sim.RolledBack }
			}
			a, err := sim.New(sim.Options{
				Broker: broker, ID: id, Dir: filepath.Join(dir, "agents", id), HealthInterval: o.health,
				Paths: o.paths, UpdateTime: o.updateTime, Outcome: outcome,
				Labels: map[string]string{"site": fmt.Sprintf("plant-%d", i%20), "line": fmt.Sprint(i % 4)},
				Log:    zerolog.Nop(),
			})
			if err != nil {
				errs <- err
				return
			}
			h.agents[i-from] = a
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// start runs every agent at once and returns when all are connected.
func (h *localHost) start(ctx context.Context) error {
	actx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for _, a := range h.agents {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			_ = a.Run(actx)
		}()
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		up := 0
		for _, a := range h.agents {
			if a.Connected() {
				up++
			}
		}
		if up == len(h.agents) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d agents connected after 10 minutes", up, len(h.agents))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// close stops the agents and closes their stores.
func (h *localHost) close() {
	if h.cancel != nil {
		h.cancel()
		h.wg.Wait()
	}
	for _, a := range h.agents {
		if a != nil {
			_ = a.Close()
		}
	}
}

// Worker processes: when this process cannot hold every agent (each needs
// a socket and a bbolt file, and the open-file limit is the hard one the
// machine gives), the agents are split among copies of fleetsim started
// with -worker. They talk in lines: the worker says "opened" once its
// stores are open, the parent answers "go" to all at once (the connect
// storm starts), the worker says "connected" when all its agents are;
// closing its standard input stops it.

// workerHost runs agents from..to-1 in a child fleetsim.
type workerHost struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan struct{}
}

func startWorker(o options, broker, dir string, from, to int) (*workerHost, error) {
	args := []string{"-worker", "-broker", broker, "-from", strconv.Itoa(from), "-to", strconv.Itoa(to),
		"-n", strconv.Itoa(o.n), "-health", o.health.String(), "-paths", strconv.Itoa(o.paths),
		"-update-time", o.updateTime.String(), "-dir", dir}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	w := &workerHost{cmd: cmd, in: in, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		_ = cmd.Wait()
	}()
	return w, nil
}

// expect waits for the worker to say word.
func (w *workerHost) expect(ctx context.Context, word string) error {
	for {
		select {
		case l := <-w.lines:
			if l == word {
				return nil
			}
			if strings.HasPrefix(l, "error ") {
				return fmt.Errorf("worker %d: %s", w.cmd.Process.Pid, l)
			}
		case <-w.done:
			return fmt.Errorf("worker %d ended before saying %q", w.cmd.Process.Pid, word)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(15 * time.Minute):
			return fmt.Errorf("worker %d did not say %q within 15 minutes", w.cmd.Process.Pid, word)
		}
	}
}

// stop closes the worker's input and waits for it (killed, by its pid,
// after a minute).
func (w *workerHost) stop() {
	_ = w.in.Close()
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// runWorker is fleetsim -worker: it hosts agents from..to-1 for a parent.
func runWorker(ctx context.Context, o options, broker string, from, to int) error {
	if _, err := raiseFileLimit(uint64(2*(to-from) + 1024)); err != nil {
		return err
	}
	h, err := openLocal(o, broker, o.dir, from, to)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return err
	}
	defer h.close()
	fmt.Println("opened")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return nil
	}
	if err := h.start(ctx); err != nil {
		fmt.Printf("error %v\n", err)
		return err
	}
	fmt.Println("connected")
	for in.Scan() { // until the parent closes our input
	}
	return nil
}
