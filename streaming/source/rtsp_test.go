package source

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRTSPProbe: a port that accepts answers the probe, a closed one does
// not; a URL without a port is probed on RTSP's default port, and the
// error carries no credentials.
func TestRTSPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (&RTSP{URL: "rtsp://u:secret@" + addr + "/s"}).Probe(ctx); err != nil {
		t.Fatalf("open port: %v", err)
	}
	ln.Close()
	err = (&RTSP{URL: "rtsp://u:secret@" + addr + "/s"}).Probe(ctx)
	if err == nil {
		t.Fatal("closed port answered")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("credentials in %v", err)
	}
	for url, port := range map[string]string{"rtsp://127.0.0.1/s": ":554", "rtsps://127.0.0.1/s": ":322"} {
		err := (&RTSP{URL: url}).Probe(ctx)
		if err != nil && !strings.Contains(err.Error(), "127.0.0.1"+port) {
			t.Fatalf("%s probed elsewhere: %v", url, err)
		}
	}
}
