package guard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHTTPServerDefaults(t *testing.T) {
	s, err := ListenHTTP("127.0.0.1:0", http.NotFoundHandler(), HTTPOptions{Listener: ListenerOptions{Name: "t", MaxConnsPerIP: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := s.hs
	if hs.ReadHeaderTimeout != 5*time.Second || hs.ReadTimeout != 10*time.Second || hs.IdleTimeout != 60*time.Second ||
		hs.MaxHeaderBytes != 16<<10 || hs.WriteTimeout != 0 || s.o.ShutdownTimeout != 3*time.Second || hs.ErrorLog == nil {
		t.Fatalf("server %+v, options %+v", hs, s.o)
	}
	if s.o.Listener.Busy == nil || string(s.o.Listener.Busy(ReasonMaxConnsPerIP)) != string(HTTPBusy(ReasonMaxConnsPerIP)) {
		t.Fatal("an HTTP listener does not refuse with HTTPBusy")
	}
}

// serve runs s.Serve until the test stops it; the returned channel gives
// Serve's result.
func serve(t *testing.T, ctx context.Context, s *HTTPServer, stopping func()) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, stopping) }()
	return done
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// TestHTTPServeStops: when ctx ends, the requests' contexts end before
// stopping runs, a request still under way is cut after ShutdownTimeout,
// and Serve returns nil with the listener closed.
func TestHTTPServeStops(t *testing.T) {
	entered := make(chan struct{}, 2)
	waitEnded := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if r.URL.Path == "/stuck" {
			<-release // ignores its context: only the shutdown can cut it
			return
		}
		<-r.Context().Done()
		close(waitEnded)
	})
	s, err := ListenHTTP("127.0.0.1:0", h, HTTPOptions{Listener: ListenerOptions{Name: "t"}, ShutdownTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stoppedAfter := make(chan bool, 1)
	done := serve(t, ctx, s, func() {
		select {
		case <-waitEnded:
			stoppedAfter <- true
		case <-time.After(5 * time.Second):
			stoppedAfter <- false
		}
	})
	base := "http://" + s.Addr().String()
	stuck := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + "/wait")
		if err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		resp, err := http.Get(base + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		stuck <- err
	}()
	<-entered
	<-entered
	cancel()
	err = result(t, done)
	close(release)
	if err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if !<-stoppedAfter {
		t.Fatal("stopping ran before the requests' contexts ended")
	}
	if err := <-stuck; err == nil {
		t.Error("the request the shutdown cut got an answer")
	}
	if st := s.Stats(); st.State != StateClosed {
		t.Fatalf("stats after Serve %+v", st)
	}
	poll(t, "connections let go", func() bool { return s.Stats().Open == 0 })
	http.DefaultClient.CloseIdleConnections()
}

// TestHTTPServeEndsWithItsListener: a listener that fails for good, or
// the watched one, ends Serve with an error that says which.
func TestHTTPServeEndsWithItsListener(t *testing.T) {
	t.Run("own", func(t *testing.T) {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f := &flaky{Listener: inner, err: acceptErr(syscall.EINVAL)}
		f.fails.Store(1)
		s := newHTTPServer(Wrap(f, ListenerOptions{Name: "t"}), http.NotFoundHandler(), HTTPOptions{Listener: ListenerOptions{Name: "t"}})
		err = result(t, serve(t, context.Background(), s, nil))
		if !errors.Is(err, syscall.EINVAL) || !strings.HasPrefix(err.Error(), "serve t: ") {
			t.Fatalf("Serve = %v", err)
		}
		if st := s.Stats(); st.State != StateDown {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("watched", func(t *testing.T) {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f := &flaky{Listener: inner, err: acceptErr(syscall.EINVAL)}
		f.fails.Store(1)
		w := Wrap(f, ListenerOptions{Name: "w"})
		defer w.Close()
		s, err := ListenHTTP("127.0.0.1:0", http.NotFoundHandler(), HTTPOptions{Listener: ListenerOptions{Name: "t"}, Watch: w})
		if err != nil {
			t.Fatal(err)
		}
		done := serve(t, context.Background(), s, nil)
		if _, err := w.Accept(); err == nil {
			t.Fatal("the watched listener did not fail")
		}
		err = result(t, done)
		if !errors.Is(err, syscall.EINVAL) || !strings.HasPrefix(err.Error(), "w listener ") {
			t.Fatalf("Serve = %v", err)
		}
	})
}
