package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/streaming/source"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// hostilePass is a camera password url.Parse refuses.
const hostilePass = `p a/s"<s`

// leaks returns the secrets of the redaction tests found in out, in any of
// the spellings they could take: as written, JSON-escaped, percent-encoded.
func leaks(out string) []string {
	var found []string
	for _, s := range []string{"s3cr3t", "p a/s", `a/s\"`, "a%2Fs", "p%20a"} {
		if strings.Contains(out, s) {
			found = append(found, s)
		}
	}
	return found
}

func noLeak(t *testing.T, what, out string) {
	t.Helper()
	if l := leaks(out); l != nil {
		t.Fatalf("%s shows %q:\n%s", what, l, out)
	}
}

// mqttLog keeps every payload the fleet side receives.
type mqttLog struct {
	mu   sync.Mutex
	msgs []fleet.Msg
}

func (m *mqttLog) all() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, msg := range m.msgs {
		fmt.Fprintf(&b, "%s %s\n", msg.Kind, msg.Payload)
	}
	return b.String()
}

func (m *mqttLog) has(match func(fleet.Msg) bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range m.msgs {
		if match(msg) {
			return true
		}
	}
	return false
}

// TestSecretsNeverLeave runs the agent with two unreachable cameras whose
// URLs carry secrets (a query password, and a userinfo password url.Parse
// refuses) and checks every output: check-config, the local API
// (/v1/paths, /v1/config, /v1/health, refusals), MQTT health, events and
// command replies (a paths.add that runs, one that fails validation), and
// the log. The logger is a bare zerolog one, without the redacting writer
// of internal/log, so a site that forgot to redact fails here.
func TestSecretsNeverLeave(t *testing.T) {
	dead := freePort(t) // nothing listens: connection refused
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleetT(t, b.URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, unsub, err := f.Subscribe(ctx, "cg-e2e", 100000)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	got := &mqttLog{}
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		for {
			select {
			case m := <-ch:
				got.mu.Lock()
				got.msgs = append(got.msgs, m)
				got.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()

	file, _, apiAddr := fleetConfig(t, t.TempDir(), b.URL(), fmt.Sprintf(`paths:
  query:
    source: rtsp://%s/live?user=admin&password=s3cr3t
    sourceOnDemand: false
  hostile:
    source: 'rtsp://admin:%s@%s/live'
    sourceOnDemand: false
`, dead, hostilePass, dead))

	var out, errOut bytes.Buffer
	if code := Main([]string{"check-config", "-c", file}, &out, &errOut); code != 0 {
		t.Fatalf("check-config: %d %s", code, errOut.String())
	}
	noLeak(t, "check-config", out.String()+errOut.String())
	for _, want := range []string{"password=***", "rtsp://admin:***@" + dead} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("check-config lacks %q:\n%s", want, out.String())
		}
	}

	logs := &testlog.Buffer{}
	_, stop := startAgent(t, file, logs)
	get := func(path string) string {
		resp, err := http.Get("http://" + apiAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	post := func(path, body string) (int, string) {
		resp, err := http.Post("http://"+apiAddr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	waitFor := func(what string, match func(fleet.Msg) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !got.has(match) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 15 s:\n%s", what, got.all())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("birth", isStatus(uplink.StateOnline, ""))

	// Commands: one that runs, one refused by validation.
	deadQuery := "rtsp://" + dead + "/x?user=admin&password=s3cr3t"
	r := fleetCmd(t, f, "paths.add", `{"name":"cam9","conf":{"source":`+jsonString(deadQuery)+`,"sourceOnDemand":false}}`)
	if !r.OK {
		t.Fatalf("paths.add: %+v", r.Error)
	}
	r = fleetCmd(t, f, "paths.add", `{"name":"cam10","conf":{"source":`+jsonString("rtsp://admin:"+hostilePass+"@"+dead+"/x")+`,"sourceOnDemand":false}}`)
	if !r.OK {
		t.Fatalf("paths.add with a hostile password: %+v", r.Error)
	}
	r = fleetCmd(t, f, "paths.add", `{"name":"cam11","conf":{"source":`+jsonString("http://admin:"+hostilePass+"@cam/x?password=s3cr3t")+`}}`)
	if r.OK || r.Error.Code != uplink.CodeBadRequest {
		t.Fatalf("paths.add of an invalid source: %+v", r)
	}
	for _, name := range []string{"status", "config.get", "paths.list"} {
		if r := fleetCmd(t, f, name, ""); !r.OK {
			t.Fatalf("%s: %+v", name, r.Error)
		}
	}
	code, body := post("/v1/paths/api9", `{"source":`+jsonString("http://admin:"+hostilePass+"@cam/x?password=s3cr3t")+`}`)
	if code != http.StatusBadRequest {
		t.Fatalf("POST of an invalid source: %d %s", code, body)
	}
	noLeak(t, "API refusal", body)

	// Every camera fails, and says so in its lastError.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct {
			Paths []struct {
				Name      string `json:"name"`
				LastError string `json:"lastError"`
			} `json:"paths"`
		}
		paths := get("/v1/paths")
		_ = json.Unmarshal([]byte(paths), &list)
		failed := 0
		for _, p := range list.Paths {
			if p.LastError != "" {
				failed++
			}
		}
		if failed == 4 {
			noLeak(t, "/v1/paths", paths)
			if !strings.Contains(paths, "password=***") || !strings.Contains(paths, "admin:***@") {
				t.Fatalf("/v1/paths does not show the redacted sources:\n%s", paths)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every camera failed within 15 s:\n%s", paths)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []string{"/v1/paths/query", "/v1/paths/hostile", "/v1/config", "/v1/health"} {
		noLeak(t, p, get(p))
	}
	// The fleet has seen health with the failing paths, and their events.
	waitFor("health with 4 failing paths", func(m fleet.Msg) bool {
		return m.Kind == uplink.KindHealth && strings.Count(string(m.Payload), `"lastError"`) >= 4
	})
	waitFor("path.error of cam10", func(m fleet.Msg) bool {
		return isEvent("path.error")(m) && strings.Contains(string(m.Payload), `"cam10"`)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	noLeak(t, "MQTT", got.all())
	noLeak(t, "the log", logs.String())
	if !strings.Contains(logs.String(), "password=***") {
		t.Fatalf("the log does not show the failing cameras:\n%s", logs.String())
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestRTSPSFingerprintThroughAgent: an rtsps camera with a self-signed
// certificate is refused, its lastError (and the log) names the
// fingerprint; pinned with it (in openssl's spelling) over the API, it is
// relayed to a reader; a wrong pin is refused.
func TestRTSPSFingerprintThroughAgent(t *testing.T) {
	cert := testcam.SelfSigned(t, "127.0.0.1")
	fp := source.Fingerprint(cert.Leaf)
	cam := testcam.New(t, func(c *testcam.Camera) {
		c.TLS, c.User, c.Pass = testcam.ServerTLS(cert), "admin", hostilePass
	})
	src := strings.Replace(cam.URL(), "rtsps://", "rtsps://admin:"+hostilePass+"@", 1)
	file, rtsp, apiAddr := fleetConfig(t, t.TempDir(), `""`, fmt.Sprintf(`paths:
  unpinned:
    source: '%s'
    sourceOnDemand: false
`, src))
	logs := &testlog.Buffer{}
	startAgent(t, file, logs)

	lastError := func(name, want string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + apiAddr + "/v1/paths/" + name)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				LastError string `json:"lastError"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if strings.Contains(p.LastError, want) {
				return p.LastError
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: lastError %q lacks %q", name, p.LastError, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	msg := lastError("unpinned", "sourceFingerprint: "+fp)
	noLeak(t, "lastError", msg)
	if !strings.Contains(logs.String(), "sourceFingerprint: "+fp) {
		t.Fatalf("the log does not name the fingerprint:\n%s", logs.String())
	}

	openssl := strings.ToUpper(fp[:2])
	for i := 2; i < len(fp); i += 2 {
		openssl += ":" + strings.ToUpper(fp[i:i+2])
	}
	add := func(name, pin string, onDemand bool) {
		t.Helper()
		body := fmt.Sprintf(`{"source":%s,"sourceFingerprint":%q,"sourceOnDemand":%t}`, jsonString(src), pin, onDemand)
		resp, err := http.Post("http://"+apiAddr+"/v1/paths/"+name, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /v1/paths/%s: %d %s", name, resp.StatusCode, b)
		}
		noLeak(t, "POST reply", string(b))
	}
	add("pinned", openssl, true)
	rd, err := testcam.Read(t, "rtsp://"+rtsp+"/pinned", false)
	if err != nil {
		t.Fatalf("read the pinned camera: %v", err)
	}
	rd.WaitPackets(t, 10, 10*time.Second)
	rd.Close()
	if cam.SecureReaders() == 0 {
		t.Fatal("the camera was not read over SRTP")
	}

	add("wrongpin", strings.Repeat("ab", 32), false)
	lastError("wrongpin", "not the pinned "+strings.Repeat("ab", 32))
	noLeak(t, "the log", logs.String())
}
