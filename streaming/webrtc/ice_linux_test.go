package webrtc

import (
	"context"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/streaming"
)

// TestICETCPListenerDeathEndsRun: pion's ICE-TCP accept loop ends quietly
// on an error; the server must not run on without the listener it was
// asked for. The socket is shut down under it (accept: EINVAL).
func TestICETCPListenerDeathEndsRun(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	o := Options{Paths: m, Address: "127.0.0.1:0", ICEUDPMuxAddress: "127.0.0.1:0", ICETCPMuxAddress: "127.0.0.1:0",
		IPsFromInterfaces: true, IPsFromInterfacesList: []string{"lo"}, Logger: testLogger(t)}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// The first offer builds the ICE muxes: pion then accepts on the socket.
	c := newClient(t, loopbackAPI(t, false))
	c.post("http://"+s.Addr().String(), "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	fd := testcam.ListenerFD(t, os.Getpid(), s.ListenerStats()[1].Addr)
	if err := syscall.Shutdown(fd, syscall.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "webrtc-ice-tcp listener") {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server still running 10 s after its ICE-TCP listener died")
	}
	if ls := s.ListenerStats(); ls[1].State.String() != "down" {
		t.Fatalf("listeners %+v", ls)
	}
}
