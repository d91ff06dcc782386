package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"
)

// The floor's readers are sinks: one process per socket, like the ffmpeg
// readers a relay serves, so that every write wakes a process of its own
// and the floor pays for those wake-ups as any relay does. (In-process
// readers, one netpoller waking for many sockets, made the floor look
// cheaper than any relay serving real players can be: 1.33–1.40 % of
// kernel time at 50 TCP readers where camgate and go2rtc spend 1.8–2.1 %.)

// sinkEnv marks a sink child: it reads its socket, fd 3, until it ends.
const sinkEnv = "CAMGATE_BENCH_SINK"

func runSinkChild() error {
	f := os.NewFile(3, "sink")
	if f == nil {
		return fmt.Errorf("%s: no fd 3", sinkEnv)
	}
	// A UDP socket never ends: leave when the bench does, however it
	// ended (orphans are handed to another parent).
	parent := os.Getppid()
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != parent {
				os.Exit(0)
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Read(buf); err != nil {
			return nil
		}
	}
}

// sinks are the floor's reader processes.
type sinks struct {
	mu    sync.Mutex
	procs []*exec.Cmd
}

// filer is a socket whose descriptor can be handed to a child.
type filer interface {
	File() (*os.File, error)
}

// start hands c to a new sink process; c is closed here either way (the
// sink holds the socket from then on).
func (s *sinks) start(c net.Conn) error {
	defer c.Close()
	fc, ok := c.(filer)
	if !ok {
		return fmt.Errorf("sink: %T has no descriptor", c)
	}
	f, err := fc.File()
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	defer f.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), sinkEnv+"=1")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	s.mu.Lock()
	s.procs = append(s.procs, cmd)
	s.mu.Unlock()
	return nil
}

// stop ends the sinks this bench started, by PID, and reaps them.
func (s *sinks) stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for _, c := range procs {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
}
