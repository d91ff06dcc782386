package uplink_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

type lockedBuffer struct{ testlog.Buffer }

// attempts counts the failed-connect lines by level.
func (l *lockedBuffer) attempts() (warn, debug int, warnMsgs []string) {
	for _, line := range strings.Split(l.String(), "\n") {
		var e struct {
			Level   string `json:"level"`
			Msg     string `json:"message"`
			RetryIn string `json:"retryIn"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.RetryIn == "" {
			continue
		}
		switch e.Level {
		case "warn":
			warn++
			warnMsgs = append(warnMsgs, e.Msg+" retryIn="+e.RetryIn)
		case "debug":
			debug++
		}
	}
	return
}

func waitAttempts(t *testing.T, l *lockedBuffer, debug int) {
	t.Helper()
	// Retries come every 20-100 ms here; the deadline only bounds a
	// failure (one CI run under load saw fewer than 3 in 10 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, d, _ := l.attempts(); d >= debug {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d quiet retries within 30s:\n%s", debug, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With no broker the uplink warns once, then retries at debug level; a
// connection ends the outage, and the next loss warns once again.
func TestNoBrokerWarnsOncePerOutage(t *testing.T) {
	zerolog.DurationFieldFormat = zerolog.DurationFormatString // as internal/log sets it
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	p := mqtttest.NewProxy(t, b.Addr())
	p.Cut()
	logs := &lockedBuffer{}
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	c := newClient(t, p.URL(), nil, func(o *uplink.Options) {
		o.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	runClient(t, c)
	waitAttempts(t, logs, 3)
	warn, _, msgs := logs.attempts()
	if warn != 1 || !strings.Contains(msgs[0], "until it connects") {
		t.Fatalf("before the first connect: %d warnings %q, want 1", warn, msgs)
	}
	if !strings.HasSuffix(msgs[0], "ms") {
		t.Errorf("retryIn without a unit: %q", msgs[0])
	}

	p.Restore()
	waitStatus(t, ch, uplink.StateOnline, "")
	_, before, _ := logs.attempts()
	p.Cut()
	waitAttempts(t, logs, before+3)
	warn, _, msgs = logs.attempts()
	if warn != 2 || !strings.Contains(msgs[1], "lost") {
		t.Fatalf("after a loss: %d warnings %q, want 2", warn, msgs)
	}
}
