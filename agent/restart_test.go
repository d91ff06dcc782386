package agent

import (
	"sync"
	"testing"
)

// TestRequestRestartConcurrent: the local API and MQTT may ask for a
// restart at the same moment; every caller returns and the channel is
// closed exactly once (a second close panics).
func TestRequestRestartConcurrent(t *testing.T) {
	const callers = 8
	for range 2000 {
		a := &Agent{restart: make(chan struct{})}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a.requestRestart()
			}()
		}
		close(start)
		wg.Wait()
		select {
		case <-a.restart:
		default:
			t.Fatal("restart not signalled")
		}
	}
}
