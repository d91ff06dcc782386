package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
)

// lineWatch is a log sink that closes seen once a line containing want
// was written (zerolog writes one event per Write).
type lineWatch struct {
	want string
	once sync.Once
	seen chan struct{}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.want)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestPprofEndpoint: /debug/pprof/ on the local API answers 404 while
// agent.pprof is off (the default) and serves the index and a heap profile
// when it is on; the API's own routes answer either way.
func TestPprofEndpoint(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof=%v", on), func(t *testing.T) {
			dir := t.TempDir()
			apiAddr := freePort(t)
			pprofLine := ""
			if on {
				pprofLine = "  pprof: true\n"
			}
			body := fmt.Sprintf("agent:\n  dataDir: %s\n  logLevel: info\n%srtsp:\n  address: %s\n  transports: [tcp]\n"+
				"webrtc:\n  address: \"\"\nhls:\n  address: \"\"\napi:\n  address: %s\nplayback:\n  address: \"\"\nuplink:\n  broker: \"\"\n",
				dir, pprofLine, freePort(t), apiAddr)
			file := filepath.Join(t.TempDir(), "camgate.yml")
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := conf.Load(file, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Agent.Pprof != on {
				t.Fatalf("agent.pprof = %v, want %v", cfg.Agent.Pprof, on)
			}
			logs := &lineWatch{want: "local API listening", seen: make(chan struct{})}
			a, err := New(cfg, Options{ConfigFile: file}, zerolog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("agent run: %v", err)
				}
			}()
			select {
			case <-logs.seen:
			case err := <-done:
				t.Fatalf("agent stopped at start: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("local API not listening within 10s")
			}

			get := func(path string) (int, string) {
				t.Helper()
				resp, err := http.Get("http://" + apiAddr + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp.StatusCode, string(b)
			}
			if code, _ := get("/metrics"); code != http.StatusOK {
				t.Fatalf("/metrics: %d", code)
			}
			code, index := get("/debug/pprof/")
			heap, _ := get("/debug/pprof/heap?debug=1")
			if !on {
				if code != http.StatusNotFound || heap != http.StatusNotFound {
					t.Fatalf("pprof off: /debug/pprof/ %d, heap %d, want 404", code, heap)
				}
				return
			}
			if code != http.StatusOK || !strings.Contains(index, "goroutine") {
				t.Fatalf("pprof on: /debug/pprof/ %d %q", code, index)
			}
			if heap != http.StatusOK {
				t.Fatalf("pprof on: heap %d", heap)
			}
		})
	}
}
