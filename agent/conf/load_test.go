package conf

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RTSP.Address != ":8554" || c.PathDefaults.SourceOnDemandStartTimeout.D() != 10*time.Second || c.PathDefaults.SourceRetryMax.D() != 5*time.Second {
		t.Fatalf("defaults not loaded: %+v", c.RTSP)
	}
	if c.Paths["demo"].Source != "demo" || c.Paths["all_others"].Source != "publisher" {
		t.Fatalf("default paths: %+v", c.Paths)
	}
	if len(c.Auth.Users) != 2 {
		t.Fatalf("default users: %d", len(c.Auth.Users))
	}
	if c.Auth.Argon2MaxMemory != 64<<20 || c.Auth.Argon2QueueTimeout.D() != 5*time.Second {
		t.Fatalf("argon2 defaults: %s, %s", c.Auth.Argon2MaxMemory, c.Auth.Argon2QueueTimeout.D())
	}
	if c.Agent.GoGC != 50 || c.Agent.GoMemLimit != 0 || !c.Agent.UDPGSO {
		t.Fatalf("runtime defaults: goGC %d, goMemLimit %d, udpGSO %v", c.Agent.GoGC, c.Agent.GoMemLimit, c.Agent.UDPGSO)
	}
	if c.RTSP.MaxConnections != 512 || c.RTSP.MaxConnectionsPerIP != 128 || c.WebRTC.MaxConnections != 256 ||
		c.WebRTC.MaxConnectionsPerIP != 32 || c.WebRTC.MaxPendingSessions != 64 || c.API.MaxConnections != 64 ||
		c.API.MaxConnectionsPerIP != 32 || len(c.API.AllowedHosts) != 0 {
		t.Fatalf("connection caps: %+v %+v %+v", c.RTSP, c.WebRTC, c.API)
	}
	c, err = Load("", []string{"CAMGATE_API_ALLOWEDHOSTS=[box.example, 10.0.0.5]", "CAMGATE_RTSP_MAXCONNECTIONS=0"})
	if err != nil || len(c.API.AllowedHosts) != 2 || c.RTSP.MaxConnections != 0 {
		t.Fatalf("caps from the environment: %v %+v", err, c.API)
	}
}

func TestFileMergesMapsReplacesLists(t *testing.T) {
	p := writeFile(t, `
rtsp:
  address: :9554
auth:
  users:
    - {user: ops, pass: secret, permissions: [{action: read}]}
paths:
  cam1:
    source: rtsp://admin:hunter2@10.0.0.64:554/s
    sourceOnDemand: false
`)
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RTSP.Address != ":9554" || c.RTSP.RTPAddress != ":8000" {
		t.Fatalf("rtsp: %+v", c.RTSP)
	}
	if len(c.Auth.Users) != 1 || c.Auth.Users[0].User != "ops" {
		t.Fatalf("users not replaced: %+v", c.Auth.Users)
	}
	if _, ok := c.Paths["demo"]; !ok {
		t.Fatal("default demo path lost")
	}
	if c.Paths["cam1"].SourceOnDemand == nil || *c.Paths["cam1"].SourceOnDemand {
		t.Fatal("cam1 sourceOnDemand not read")
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "secret") {
		t.Fatalf("secret in marshalled config:\n%s", out)
	}
	if !strings.Contains(string(out), "rtsp://admin:***@10.0.0.64:554/s") {
		t.Fatalf("source not shown redacted:\n%s", out)
	}
}

func TestEnvOverrides(t *testing.T) {
	c, err := Load("", []string{"CAMGATE_RTSP_ADDRESS=:7554", "CAMGATE_RTSP_TRANSPORTS=[tcp]", "CAMGATE_UPLINK_HEALTHINTERVAL=5s", "CAMGATE_UPLINK_OUTBOX_MAXMESSAGES=7", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RTSP.Address != ":7554" || len(c.RTSP.Transports) != 1 || c.Uplink.HealthInterval.D() != 5*time.Second || c.Uplink.Outbox.MaxMessages != 7 {
		t.Fatalf("env not applied: %+v %+v", c.RTSP, c.Uplink)
	}
	if _, err := Load("", []string{"CAMGATE_RTSP_ADRESS=x"}); err == nil || !strings.Contains(err.Error(), "CAMGATE_RTSP_ADRESS") {
		t.Fatalf("unknown env: %v", err)
	}
	if _, err := Load("", []string{"CAMGATE_PYTHON=/usr/bin/python3"}); err != nil {
		t.Fatalf("variable outside every section refused: %v", err)
	}
	if _, err := Load("", []string{"CAMGATE_RTSP_ADDRESS=[unclosed"}); err == nil || !strings.Contains(err.Error(), "CAMGATE_RTSP_ADDRESS") {
		t.Fatalf("bad env value: %v", err)
	}
	// A value that parses but is invalid is blamed on its variable, not
	// on the line of the file it replaced.
	_, err = Load(writeFile(t, "agent:\n  logLevel: info\n"), []string{"CAMGATE_AGENT_GOGC=-1", "CAMGATE_AGENT_LOGLEVEL=loud"})
	if err == nil || !strings.HasPrefix(err.Error(), "environment: CAMGATE_AGENT_LOGLEVEL") || strings.Contains(err.Error(), ".yml") {
		t.Fatalf("invalid env value: %v", err)
	}
	// A list set by a variable: its item is named after the variable.
	_, err = Load(writeFile(t, "auth:\n  users:\n    - {user: any, ips: [10.0.0.1], permissions: [{action: read}]}\n"),
		[]string{`CAMGATE_AUTH_USERS=[{user: any, ips: [10.0.0.1/33], permissions: [{action: read}]}]`})
	if err == nil || !strings.HasPrefix(err.Error(), "environment: CAMGATE_AUTH_USERS: auth.users[0].ips[0]: ") {
		t.Fatalf("invalid env list: %v", err)
	}
}

// errorCases each hold a file and the fragments its error must contain.
var errorCases = []struct {
	name string
	body string
	want []string
}{
	{"unknown key", "rtsp:\n  adress: :1\n", []string{":2", "rtsp.adress", "unknown key"}},
	{"unknown section", "foo: 1\n", []string{":1", "foo", "unknown key"}},
	{"wrong type", "rtsp:\n  transports: tcp\n", []string{":2", "rtsp.transports"}},
	{"bad duration", "pathDefaults:\n  readTimeout: 10 seconds\n", []string{":2", "pathDefaults.readTimeout", "invalid duration"}},
	{"bad path duration", "paths:\n  cam:\n    source: demo\n    readTimeout: x\n", []string{":4", "paths.cam.readTimeout", "invalid duration"}},
	{"bad path name", "paths:\n  \"bad name\":\n    source: demo\n", []string{":2", "paths.bad name", "invalid path name"}},
	{"bad source scheme", "paths:\n  cam:\n    source: http://u:pw@x/\n", []string{":3", "paths.cam.source", "unsupported"}},
	{"no host", "paths:\n  cam:\n    source: rtsp:///x\n", []string{"paths.cam.source", "no host"}},
	{"no source", "paths:\n  cam:\n    maxReaders: 2\n", []string{":2", "paths.cam.source: missing"}},
	{"negative cap", "rtsp:\n  maxConnectionsPerIP: -1\n", []string{":2", "rtsp.maxConnectionsPerIP", "no cap"}},
	{"negative pending cap", "webrtc:\n  maxPendingSessions: -5\n", []string{":2", "webrtc.maxPendingSessions"}},
	{"allowed host with port", "api:\n  allowedHosts: [\"box.example:9997\"]\n", []string{"api.allowedHosts[0]", "without scheme or port"}},
	{"allowed host url", "api:\n  allowedHosts: [\"http://box\"]\n", []string{"api.allowedHosts[0]"}},
	{"bad level", "agent:\n  logLevel: loud\n", []string{":2", "agent.logLevel"}},
	{"negative goGC", "agent:\n  goGC: -5\n", []string{":2", "agent.goGC", "-5"}},
	{"bad transport", "pathDefaults:\n  rtspTransport: quic\n", []string{":2", "pathDefaults.rtspTransport"}},
	{"retry max too short", "pathDefaults:\n  sourceRetryMax: 10ms\n", []string{":2", "pathDefaults.sourceRetryMax", "at least 100ms"}},
	{"path retry max zero", "paths:\n  cam:\n    source: demo\n    sourceRetryMax: 0s\n", []string{":4", "paths.cam.sourceRetryMax", "at least 100ms"}},
	{"bad cidr", "auth:\n  users:\n    - {user: any, ips: [10.0.0.0/33], permissions: [{action: read}]}\n", []string{"auth.users[0]", "ips"}},
	{"bad action", "auth:\n  users:\n    - {user: any, permissions: [{action: fly}]}\n", []string{"auth.users[0]", "fly"}},
	{"tiny argon2 budget", "auth:\n  argon2MaxMemory: 1KiB\n", []string{":2", "auth.argon2MaxMemory", "1MiB"}},
	{"endless argon2 wait", "auth:\n  argon2QueueTimeout: 10m\n", []string{":2", "auth.argon2QueueTimeout", "1m"}},
	{"bad size", "uplink:\n  outbox: {maxBytes: lots}\n", []string{":2", "uplink.outbox.maxBytes", "invalid size"}},
	{"syntax", "rtsp: [\n", []string{"camgate.yml"}},
	{"bad public key", "update:\n  publicKeys: [RWQnotakey]\n", []string{"update.publicKeys[0]", "not a minisign public key"}},
	{"short trial", "update:\n  trialTimeout: 10ms\n", []string{":2", "update.trialTimeout"}},
	{"bad fingerprint", "paths:\n  cam:\n    source: rtsps://cam/x\n    sourceFingerprint: abc\n", []string{":4", "paths.cam.sourceFingerprint", "64 hex digits"}},
	{"fingerprint without rtsps", "paths:\n  cam:\n    source: rtsp://u:pw@cam/x\n    sourceFingerprint: " + strings.Repeat("ab", 32) + "\n", []string{":4", "paths.cam.sourceFingerprint", "rtsps://"}},
	{"bad source scheme, query secret", "paths:\n  cam:\n    source: http://cam/x?user=admin&password=pw@x\n", []string{":3", "paths.cam.source", "password=***"}},
}

// keyPairs finds "source: source:" (Go's regexp has no backreference:
// the test compares the two words).
var keyPairs = regexp.MustCompile(`(\w+): (\w+):`)

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.body)
			_, err := Load(p, nil)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				t.Errorf("error does not name the file: %s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "pw") {
				t.Errorf("error leaks a password: %s", msg)
			}
			for _, m := range keyPairs.FindAllStringSubmatch(msg, -1) {
				if m[1] == m[2] {
					t.Errorf("error repeats its key (%q): %s", m[0], msg)
				}
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	for _, tc := range errorCases {
		f.Add(tc.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var c Config
		_ = decodeInto(&c, []byte(body), "fuzz")
	})
}

func TestNullRemovesMapEntry(t *testing.T) {
	c, err := Load(writeFile(t, "paths:\n  demo: null\n  ghost: ~\n  cam1:\n    source: demo\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Paths["demo"]; ok {
		t.Errorf("demo: null kept the default entry: %v", c.Paths)
	}
	if _, ok := c.Paths["ghost"]; ok {
		t.Errorf("null for a name the defaults lack made an entry: %v", c.Paths)
	}
	if _, ok := c.Paths["all_others"]; !ok || c.Paths["cam1"].Source != "demo" {
		t.Errorf("other entries lost: %v", c.Paths)
	}
	// A section left empty (every entry commented out) keeps the defaults,
	// as an empty rtsp: section does.
	for _, body := range []string{"paths:\n  # cam1:\n  #   source: demo\n", "paths: null\n", "paths: {}\n"} {
		c, err := Load(writeFile(t, body), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Paths["demo"]; !ok || len(c.Paths) != 2 {
			t.Errorf("%q: default paths not kept: %v", body, c.Paths)
		}
	}
}

func TestByteSizeBounds(t *testing.T) {
	for s, want := range map[string]ByteSize{"64MiB": 64 << 20, "8589934591GiB": 8589934591 << 30, "9223372036854775807": MaxByteSize} {
		if got, err := ParseByteSize(s); err != nil || got != want {
			t.Errorf("%s: %d %v", s, got, err)
		}
	}
	// Values that wrap uint64 or do not fit the int64 the consumers take.
	for _, s := range []string{"8589934592GiB", "99999999999GiB", "9223372036854775808", "18446744073709551616"} {
		if _, err := ParseByteSize(s); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// TestKeyLines: errors inside lists name the item and its line, whether
// the list is written in flow or block style; a key the file leaves out
// is placed on the nearest enclosing one.
func TestKeyLines(t *testing.T) {
	p := writeFile(t, `auth:
  users:
    - {user: any, permissions: [{action: read}]}
    - user: ops
      pass: x
      ips:
        - 10.0.0.1
        - 300.0.0.1
      permissions: [{action: read}]
`)
	_, err := Load(p, nil)
	if err == nil || !strings.Contains(err.Error(), p+":8: auth.users[1].ips[1]: ") {
		t.Fatalf("got %v", err)
	}
	p = writeFile(t, "auth:\n  users:\n    - {user: any, permissions: [{action: read}]}\n    - {permissions: [{action: read}]}\n")
	if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), p+":4: auth.users[1].user: ") {
		t.Fatalf("got %v", err)
	}
}

// Hostile passwords (userinfo and query) are taken as written and never
// printed: the effective config shows them masked.
func TestSecretsInSources(t *testing.T) {
	fp := strings.Repeat("AB:", 31) + "AB"
	p := writeFile(t, `paths:
  q:
    source: rtsp://10.0.0.5/live?user=admin&password=s3cr3t
  h:
    source: 'rtsps://admin:p a/s"<s@10.0.0.6:322/live'
    sourceFingerprint: "`+fp+`"
`)
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(c.Paths["h"].SourceFingerprint); got != strings.Repeat("ab", 32) {
		t.Fatalf("fingerprint not normalised: %q", got)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cr3t", "p a/s", `"<s`} {
		if strings.Contains(string(out), secret) {
			t.Fatalf("%q in the effective config:\n%s", secret, out)
		}
	}
	for _, want := range []string{"password=***", "rtsps://admin:***@10.0.0.6:322/live", "sourceFingerprint: " + strings.Repeat("ab", 32)} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("effective config lacks %q:\n%s", want, out)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	want := Fingerprint(strings.Repeat("0a", 32))
	for _, s := range []string{strings.Repeat("0a", 32), strings.Repeat("0A", 32), strings.Repeat("0A:", 31) + "0A"} {
		if got, err := ParseFingerprint(s); err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"0a", strings.Repeat("0g", 32), strings.Repeat("0a", 33)} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", s)
		}
	}
}
