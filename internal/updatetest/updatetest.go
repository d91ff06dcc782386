package updatetest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"
)

// Key is a throwaway minisign key pair.
type Key struct {
	Pub  minisign.PublicKey
	Priv minisign.PrivateKey
}

// NewKey makes a key pair.
func NewKey(tb testing.TB) Key {
	tb.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return Key{Pub: pub, Priv: priv}
}

// PublicKey is the base64 line of minisign.pub, as update.publicKeys
// takes it.
func (k Key) PublicKey() string { return k.Pub.String() }

// Sign returns the text of a prehashed minisign signature of b.
func (k Key) Sign(b []byte) string {
	r := minisign.NewReader(strings.NewReader(string(b)))
	_, _ = io.Copy(io.Discard, r)
	return string(r.Sign(k.Priv))
}

// SHA256 is the hex SHA-256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ModuleRoot walks up from the working directory to go.mod.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// Build runs go build of pkg (relative to the module root) with ldflags
// into dir/name and returns the binary's path.
func Build(tb testing.TB, dir, name, pkg, ldflags string) string {
	tb.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = ModuleRoot(tb)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// BuildAgent builds camgate stamped with version.
func BuildAgent(tb testing.TB, dir, version string) string {
	return Build(tb, dir, "camgate-"+version, "./agent/cmd/camgate",
		"-s -w -X github.com/camgate/camgate/agent.Version="+version)
}

// BuildBad builds badagent in mode (exit1, hang) reporting version.
func BuildBad(tb testing.TB, dir, mode, version string) string {
	return Build(tb, dir, "bad-"+mode, "./internal/updatetest/badagent",
		"-X main.mode="+mode+" -X main.version="+version)
}

// Server serves files on 127.0.0.1 with Range support (http.ServeContent).
// Cut, when set for a name, makes the next request of it send only that
// many bytes of the body and then drop the connection; Stall makes
// requests of a name wait until Release.
type Server struct {
	URL string

	mu      sync.Mutex
	files   map[string][]byte
	cut     map[string]int
	stall   map[string]chan struct{}
	ranges  []string // Range headers seen, in order
	started chan string
	srv     *http.Server
}

// NewServer starts a file server; it stops with the test.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), files: map[string][]byte{}, cut: map[string]int{},
		stall: map[string]chan struct{}{}, started: make(chan string, 64)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.srv.Serve(ln) }()
	tb.Cleanup(func() {
		s.mu.Lock()
		for name, ch := range s.stall {
			close(ch)
			delete(s.stall, name)
		}
		s.mu.Unlock()
		_ = s.srv.Close()
		<-done
	})
	return s
}

// Put serves b as /name.
func (s *Server) Put(name string, b []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = b
	return s.URL + "/" + name
}

// Cut makes the next request of name stop after n body bytes.
func (s *Server) Cut(name string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut[name] = n
}

// Stall makes requests of name send half the file and then wait until
// Release (or the end of the test).
func (s *Server) Stall(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall[name] = make(chan struct{})
}

// Release ends the stall of name.
func (s *Server) Release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.stall[name]; ok {
		close(ch)
		delete(s.stall, name)
	}
}

// Started delivers the name of every request as it starts.
func (s *Server) Started() <-chan string { return s.started }

// Ranges returns the Range headers seen so far ("" for none).
func (s *Server) Ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	b, ok := s.files[name]
	cut, hasCut := s.cut[name]
	delete(s.cut, name)
	stall := s.stall[name]
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	select {
	case s.started <- name:
	default:
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case stall != nil:
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
		abort(w)
	case hasCut:
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b[:cut])
		w.(http.Flusher).Flush()
		abort(w)
	default:
		http.ServeContent(w, r, name, time.Unix(0, 0), strings.NewReader(string(b)))
	}
}

// abort drops the connection mid-body.
func abort(w http.ResponseWriter) {
	if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
		_ = c.Close()
	}
}

// Client is an HTTP client for the server that keeps no idle connections
// (so goroutine leak checks stay quiet).
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
}
