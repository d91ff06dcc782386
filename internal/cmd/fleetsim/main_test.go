package main

import (
	"context"
	"testing"
	"time"

	"github.com/camgate/camgate/uplink/mqtttest"
)

// TestRolloutLayout: the second wave always holds one failing agent more
// than -max-failures allows, and the canary none.
func TestRolloutLayout(t *testing.T) {
	for _, n := range []int{1, 10, 50, 999, 1000, 9744, 10000} {
		canary, failing, maxFailures := rolloutLayout(n)
		inCanary, inWave2 := 0, 0
		for i := range min(n, 3*canary) {
			switch {
			case i < canary && failing(i):
				inCanary++
			case i >= canary && failing(i):
				inWave2++
			}
		}
		if n >= 3 && (inCanary != 0 || inWave2 != maxFailures+1) {
			t.Errorf("n=%d: canary %d, failing in the canary %d, in wave 2 %d, max failures %d", n, canary, inCanary, inWave2, maxFailures)
		}
	}
}

// TestLocalHost: agents open, all connect, and stop.
func TestLocalHost(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	o := options{n: 5, health: time.Hour, paths: 2, updateTime: 10 * time.Millisecond}
	h, err := openLocal(o, b.URL(), t.TempDir(), 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.start(ctx); err != nil {
		t.Fatal(err)
	}
	// Connected comes just before the birth: poll the broker briefly.
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range h.agents {
		for {
			if _, ok := b.Retained("camgate/" + a.ID() + "/status"); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has no retained status", a.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
