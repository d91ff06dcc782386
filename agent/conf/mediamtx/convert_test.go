package mediamtx

import (
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/streaming/auth"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// inputs are the MediaMTX files under testdata: NAME.mediamtx.yml gives
// NAME.camgate.yml and NAME.report.txt.
var inputs = []string{"defaults", "windows-guide", "legacy"}

// The goldens hold what the importer writes; the output must load as a
// camgate configuration (conf's own rules; the agent's CLI test adds the
// subsystems' checks). Regenerate with go test -update after a change
// that is meant, and read the diff.
func TestGolden(t *testing.T) {
	for _, name := range inputs {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", name+".mediamtx.yml"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(src, name+".mediamtx.yml")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".camgate.yml", res.YAML)
			golden(t, name+".report.txt", []byte(res.Report(name+".mediamtx.yml")))
			out := filepath.Join(t.TempDir(), "camgate.yml")
			if err := os.WriteFile(out, res.YAML, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := conf.Load(out, nil); err != nil {
				t.Fatalf("the converted file does not load: %v\n%s", err, res.YAML)
			}
		})
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", file, got)
	}
}

// What the Windows guide's file must become, key by key.
func TestWindowsGuide(t *testing.T) {
	src, _ := os.ReadFile("testdata/windows-guide.mediamtx.yml")
	res, err := Convert(src, "mediamtx.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "camgate.yml")
	_ = os.WriteFile(p, res.YAML, 0o600)
	c, err := conf.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RTSP.Address != ":8554" || strings.Join(c.RTSP.Transports, ",") != "tcp" || c.API.Address != "127.0.0.1:9997" {
		t.Errorf("listeners: rtsp %s %v, api %s", c.RTSP.Address, c.RTSP.Transports, c.API.Address)
	}
	if c.Agent.LogFile != `C:\mediamtx\mediamtx.log` || !c.PathDefaults.SourceOnDemand {
		t.Errorf("agent %+v, sourceOnDemand %v", c.Agent, c.PathDefaults.SourceOnDemand)
	}
	if len(c.WebRTC.ICEServers) != 1 || c.WebRTC.ICEServers[0].URL != "stun:stun.l.google.com:19302" || c.WebRTC.AdditionalHosts[0] != "192.168.1.20" {
		t.Errorf("webrtc %+v", c.WebRTC)
	}
	if len(c.Auth.Users) != 4 || c.Auth.Users[1].User != "nvr" || string(c.Auth.Users[1].Pass) != "Nvr-Secret_2024" ||
		!strings.HasPrefix(string(c.Auth.Users[2].Pass), "sha256:") || c.Auth.Users[1].IPs[0] != "192.168.1.0/24" {
		t.Errorf("users %+v", c.Auth.Users)
	}
	w := c.Paths["webcam"]
	if w.Source != conf.SourcePublisher || !strings.Contains(string(w.RunOnDemand), `video="HD Pro Webcam C920"`) ||
		w.RunOnDemandRestart == nil || !*w.RunOnDemandRestart || w.RunOnDemandStartTimeout.D() != 15*time.Second {
		t.Errorf("webcam %+v", w)
	}
	if s := c.Paths["screen"]; s.RunOnInit == "" || s.RunOnInitRestart == nil || !*s.RunOnInitRestart {
		t.Errorf("screen %+v", s)
	}
	y := c.Paths["yard"]
	if !strings.HasSuffix(string(y.Source), "channel=1&subtype=0") || y.MaxReaders == nil || *y.MaxReaders != 4 || y.SourceOnDemandCloseAfter.D() != 30*time.Second {
		t.Errorf("yard %+v", y)
	}
	if e := c.Paths["entrance"]; e.RTSPTransport == nil || *e.RTSPTransport != "tcp" {
		t.Errorf("entrance %+v", e)
	}
	if _, ok := c.Paths["phone"]; !ok {
		t.Error("a path with no value (a publisher) was lost")
	}
	if _, ok := c.Paths[conf.CatchAll]; ok {
		t.Error("all_others kept although MediaMTX had none")
	}
	if _, ok := c.Paths[`~^cam([0-9]+)$`]; !ok {
		t.Error("regexp path lost")
	}
	report := res.Report("mediamtx.yml")
	for _, secret := range []string{"Nvr-Secret_2024", "Hik12345", "dahua2024"} {
		if strings.Contains(report, secret) {
			t.Errorf("report shows %q:\n%s", secret, report)
		}
	}
}

func TestMediaMTXValues(t *testing.T) {
	for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "1d": 24 * time.Hour, "2d12h": 60 * time.Hour, "200ms": 200 * time.Millisecond} {
		d, err := durationOf(&yaml.Node{Value: in})
		if err != nil || d != want {
			t.Errorf("duration %s: %v %v", in, d, err)
		}
	}
	if _, err := durationOf(&yaml.Node{Value: "soon"}); err == nil {
		t.Error("bad duration accepted")
	}
	for in, want := range map[string]bool{"yes": true, "No": false, "on": true, "OFF": false, "true": true} {
		if b, ok := boolOf(&yaml.Node{Value: in}); !ok || b != want {
			t.Errorf("bool %s: %v %v", in, b, ok)
		}
	}
	for d, want := range map[time.Duration]string{24 * time.Hour: "24h", 90 * time.Second: "90s", 1500 * time.Millisecond: "1.5s", 0: "0s"} {
		if got := formatDuration(d); got != want {
			t.Errorf("format %v: %s", d, got)
		}
	}
}

func TestDetect(t *testing.T) {
	if k := Detect([]byte("rtspAddress: :8554\npaths:\n  cam:\n")); len(k) != 1 || k[0] != "rtspAddress" {
		t.Errorf("mediamtx: %v", k)
	}
	if k := Detect([]byte("hls: no\nlogLevel: info\n")); len(k) != 2 || k[0] != "hls" {
		t.Errorf("mediamtx with hls: %v", k)
	}
	for _, camgate := range []string{"rtsp:\n  address: :8554\n", "paths:\n  cam:\n    source: demo\n", "", "- a\n",
		"hls:\n  address: :8889\n"} {
		if k := Detect([]byte(camgate)); k != nil {
			t.Errorf("%q taken for MediaMTX: %v", camgate, k)
		}
	}
}

// Known says which keys this build has; the importer writes the others
// commented out.
func TestKnown(t *testing.T) {
	for key, want := range map[string]bool{
		"rtsp.address": true, "webrtc.iceServers": true, "pathDefaults.runOnDemandCloseAfter": true,
		"paths.runOnInit": true, "paths.source": true, "paths": true, "rtsp.bogus": false, "nosuch": false,
	} {
		if got := Known(key); got != want {
			t.Errorf("Known(%s) = %v", key, got)
		}
	}
}

// MediaMTX's password hashes (sha256: of standard base64, argon2: PHC
// strings with unpadded base64, argon2id or argon2i) are camgate's: a
// converted user logs in with the password MediaMTX took.
func TestPasswordHashesCarryOver(t *testing.T) {
	phc := func(variant string, key []byte) string {
		return "argon2:$" + variant + "$v=19$m=4096,t=3,p=1$" + base64.RawStdEncoding.EncodeToString([]byte("12345678")) + "$" + base64.RawStdEncoding.EncodeToString(key)
	}
	sum := sha256.Sum256([]byte("mypass")) // echo -n mypass | openssl dgst -binary -sha256 | openssl base64
	hashes := []string{
		"sha256:" + base64.StdEncoding.EncodeToString(sum[:]),
		phc("argon2id", argon2.IDKey([]byte("mypass"), []byte("12345678"), 3, 4096, 1, 32)),
		phc("argon2i", argon2.Key([]byte("mypass"), []byte("12345678"), 3, 4096, 1, 32)),
	}
	var src strings.Builder
	src.WriteString("authInternalUsers:\n")
	for i, h := range hashes {
		fmt.Fprintf(&src, "  - user: u%d\n    pass: %s\n    permissions: [{action: read}]\n", i, h)
	}
	res, err := Convert([]byte(src.String()), "mediamtx.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "camgate.yml")
	_ = os.WriteFile(p, res.YAML, 0o600)
	c, err := conf.Load(p, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	var users []auth.User
	for _, u := range c.Auth.Users {
		if err := auth.CheckPassword(string(u.Pass)); err != nil {
			t.Fatalf("%s: %v", u.User, err)
		}
		users = append(users, auth.User{Name: u.User, Pass: string(u.Pass), Permissions: []auth.Permission{{Action: auth.ActionRead}}})
	}
	a, err := auth.New(users, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range hashes {
		name := fmt.Sprintf("u%d", i)
		req := auth.Request{Action: auth.ActionRead, Path: "cam", IP: net.ParseIP("10.0.0.9"), User: name, Pass: "mypass"}
		if err := a.Check(req); err != nil {
			t.Errorf("%s (%s): %v", name, hashes[i][:14], err)
		}
		req.Pass = "wrong"
		if a.Check(req) == nil {
			t.Errorf("%s: wrong password accepted", name)
		}
	}
}
