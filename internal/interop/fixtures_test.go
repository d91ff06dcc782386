package interop

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The fixtures themselves, without any external program but sh.

func TestFreeUDPPair(t *testing.T) {
	p, err := FreeUDPPair()
	if err != nil {
		t.Fatal(err)
	}
	if p%2 != 0 {
		t.Errorf("RTP port %d is odd", p)
	}
	for _, port := range []int{p, p + 1} {
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Errorf("port %d not free: %v", port, err)
			continue
		}
		c.Close()
	}
}

func TestWaitTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := WaitTCP(l.Addr().String(), time.Second, nil); err != nil {
		t.Errorf("listening port: %v", err)
	}
	port, _ := FreeTCPPort()
	start := time.Now()
	if err := WaitTCP("127.0.0.1:"+strconv.Itoa(port), 300*time.Millisecond, nil); err == nil {
		t.Error("closed port reported as accepting")
	}
	stop := make(chan struct{})
	close(stop)
	if err := WaitTCP("127.0.0.1:"+strconv.Itoa(port), 10*time.Second, stop); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("a stopped wait did not return at once: %v", err)
	}
}

func TestProcStopAndOutput(t *testing.T) {
	dir := t.TempDir()
	p, err := StartProc(dir, "sh", "sh", "-c", `trap 'echo got TERM; exit 0' TERM; echo hello; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	took, killed := p.Stop(5 * time.Second)
	if killed || took > 3*time.Second {
		t.Errorf("Stop took %v, killed %v", took, killed)
	}
	if err := p.WaitOutput("got TERM", time.Second); err != nil {
		t.Error(err)
	}
	if ok, err := p.Exited(); !ok || err != nil {
		t.Errorf("after Stop: exited %v, %v", ok, err)
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil || !strings.Contains(string(b), "hello") {
		t.Errorf("log file %s: %q, %v", p.LogPath, b, err)
	}
}

func TestProcKillsWhatIgnoresTERM(t *testing.T) {
	p, err := StartProc(t.TempDir(), "", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, killed := p.Stop(300 * time.Millisecond); !killed {
		t.Error("a child ignoring SIGTERM was not SIGKILLed")
	}
	_, err = p.Exited()
	if ee, ok := err.(interface{ Sys() any }); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("exit: %v", err)
	}
	if err := p.WaitOutput("never printed", 100*time.Millisecond); err == nil {
		t.Error("WaitOutput on an exited child found text it never printed")
	}
}

func TestWriteAgentConfig(t *testing.T) {
	o := AgentOptions{
		Dir:      t.TempDir(),
		Paths:    map[string]map[string]any{"cam": {"source": "rtsp://127.0.0.1:9/x", "sourceOnDemand": false}},
		Sections: map[string]map[string]any{"rtsp": {"writeQueueSize": 64}, "api": {"address": "127.0.0.1:1"}},
	}
	path, err := WriteAgentConfig(&o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	rtsp := doc["rtsp"]
	if rtsp["address"] != "127.0.0.1:"+strconv.Itoa(o.RTSPPort) || rtsp["rtcpAddress"] != "127.0.0.1:"+strconv.Itoa(o.RTPPort+1) || rtsp["writeQueueSize"] != 64 {
		t.Errorf("rtsp section %v", rtsp)
	}
	if doc["api"]["address"] != "127.0.0.1:1" || doc["uplink"]["broker"] != "" || doc["webrtc"]["address"] != "" {
		t.Errorf("api/uplink/webrtc: %v %v %v", doc["api"], doc["uplink"], doc["webrtc"])
	}
	if doc["agent"]["dataDir"] != filepath.Join(o.Dir, "data") {
		t.Errorf("dataDir %v", doc["agent"]["dataDir"])
	}
	if _, ok := doc["auth"]; ok {
		t.Error("auth written although Users is nil (the defaults must apply)")
	}
	if cam, _ := doc["paths"]["cam"].(map[string]any); cam["sourceOnDemand"] != false {
		t.Errorf("paths %v", doc["paths"])
	}
}
