package streaming

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/testcam"
)

// packetSignal is a reader that signals each packet it gets.
type packetSignal chan struct{}

func (s packetSignal) WritePacket(*Packet) bool {
	select {
	case s <- struct{}{}:
	default:
	}
	return true
}

func (s packetSignal) Close(error) {}

// BenchmarkCameraRecovery measures how long a path takes to play again
// after its camera comes back: the time from the camera's restart until a
// reader that stayed connected gets a packet. Each iteration stops the
// camera for a random 1-8 s (longer than the early steps of a backoff) and
// starts it again. Reported: median and max recovery over the iterations,
// for an always-on path and an on-demand path with a reader, with the
// defaults (sourceRetryMax 5 s, probes every second) and, for comparison,
// with the schedule camgate had before (1-30 s, no probes).
//
//	go test ./streaming -run '^$' -bench CameraRecovery -benchtime 20x -timeout 60m
func BenchmarkCameraRecovery(b *testing.B) {
	schedules := []struct {
		name string
		opts ManagerOptions
	}{
		{"defaults", ManagerOptions{}},
		{"before-1-30s-no-probe", ManagerOptions{RetryMin: time.Second, RetryMax: 30 * time.Second, ProbeInterval: 24 * time.Hour}},
	}
	for _, sc := range schedules {
		for _, onDemand := range []bool{false, true} {
			mode := map[bool]string{false: "always-on", true: "on-demand"}[onDemand]
			b.Run(sc.name+"/"+mode, func(b *testing.B) {
				benchRecovery(b, sc.opts, onDemand)
			})
		}
	}
}

func benchRecovery(b *testing.B, opts ManagerOptions, onDemand bool) {
	cam := testcam.New(b)
	opts.Log = zerolog.Nop()
	m, err := NewManager(opts, map[string]PathConfig{"cam": {Source: cam.URL(), SourceOnDemand: onDemand}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	lease, err := m.Acquire(ctx, "cam", ReaderRequest{})
	if err != nil {
		b.Fatal(err)
	}
	defer lease.Release()
	got := make(packetSignal, 1)
	lease.Stream().AddReader(got)
	defer lease.Stream().RemoveReader(got)
	if !waitSignal(got, 10*time.Second) {
		b.Fatal("no packet before the first restart")
	}

	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		cam.Stop()
		time.Sleep(time.Second + rand.N(7*time.Second)) // the camera is away
		drain(got)
		if err := cam.Start(); err != nil {
			b.Fatal(err)
		}
		back := time.Now()
		if !waitSignal(got, 60*time.Second) {
			b.Fatal("no packet within 60 s of the camera's return")
		}
		took = append(took, time.Since(back))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "median-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
	b.ReportMetric(0, "ns/op") // wall time per restart is mostly the outage itself
}

func waitSignal(ch packetSignal, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

func drain(ch packetSignal) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
