package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// refusedConfigs are files `run` would refuse (or run with a part that
// can never work). check-config must refuse each, naming file:line: key.
var refusedConfigs = []struct {
	name string
	body string
	line int
	key  string
	msg  string // a fragment of the message
}{
	// Addresses and ports.
	{"port out of range", "rtsp:\n  address: :99999\n", 2, "rtsp.address", "port"},
	{"port not a number", "api:\n  address: 127.0.0.1:http\n", 2, "api.address", "port"},
	{"address without port", "webrtc:\n  address: 127.0.0.1\n", 2, "webrtc.address", "invalid address"},
	{"rtp port odd", "rtsp:\n  rtpAddress: :8001\n  rtcpAddress: :8002\n", 2, "rtsp.rtpAddress", "even"},
	{"rtcp not rtp+1", "rtsp:\n  rtpAddress: :8010\n", 2, "rtsp.rtpAddress", "rtsp.rtcpAddress"},
	{"rtcp not rtp+1, both set", "rtsp:\n  rtpAddress: :8010\n  rtcpAddress: :8013\n", 3, "rtsp.rtcpAddress", "8011"},
	{"tcp clash webrtc/rtsp", "webrtc:\n  address: :8554\n", 2, "webrtc.address", "rtsp.address"},
	{"tcp clash api/webrtc on loopback", "api:\n  address: 127.0.0.1:8889\n", 2, "api.address", "webrtc.address"},
	{"tcp clash ice tcp/rtsp", "webrtc:\n  iceTCPMuxAddress: 0.0.0.0:8554\n", 2, "webrtc.iceTCPMuxAddress", "rtsp.address"},
	{"tcp clash ice tcp/webrtc", "webrtc:\n  iceTCPMuxAddress: :8889\n", 2, "webrtc.iceTCPMuxAddress", "webrtc.address"},
	{"tcp clash hls/webrtc", "hls:\n  address: :8889\n", 2, "hls.address", "webrtc.address"},
	{"hls address without port", "hls:\n  address: box\n", 2, "hls.address", "invalid address"},
	{"hls negative cap", "hls:\n  maxConnectionsPerIP: -1\n", 2, "hls.maxConnectionsPerIP", "no cap"},
	{"tcp clash both in file", "rtsp:\n  address: :7000\napi:\n  address: 127.0.0.1:7000\n", 4, "api.address", "rtsp.address"},
	{"tcp clash localhost", "rtsp:\n  address: localhost:7000\napi:\n  address: 127.0.0.1:7000\n", 4, "api.address", "rtsp.address"},
	{"tcp clash ipv6 wildcard", "rtsp:\n  address: \"[::]:7000\"\napi:\n  address: 127.0.0.1:7000\n", 4, "api.address", "rtsp.address"},
	{"udp clash ice/rtp", "webrtc:\n  iceUDPMuxAddress: :8000\n", 2, "webrtc.iceUDPMuxAddress", "rtsp.rtpAddress"},
	{"udp clash ice/rtcp", "webrtc:\n  iceUDPMuxAddress: 127.0.0.1:8001\n", 2, "webrtc.iceUDPMuxAddress", "rtsp.rtcpAddress"},
	{"udp clash rtp moved onto ice", "rtsp:\n  rtpAddress: :8188\n  rtcpAddress: :8189\n", 3, "rtsp.rtcpAddress", "webrtc.iceUDPMuxAddress"},
	{"udp clash default ice port", "webrtc:\n  iceUDPMuxAddress: \"\"\nrtsp:\n  rtpAddress: :8188\n  rtcpAddress: :8189\n", 2, "webrtc.iceUDPMuxAddress", "rtsp.rtcpAddress"},

	// Agent.
	{"agent id with slash and wildcard", "agent:\n  id: a/b#\n", 2, "agent.id", "MQTT"},
	{"agent id plus", "agent:\n  id: a+b\n", 2, "agent.id", "+"},
	{"agent id NUL", "agent:\n  id: \"a\\0b\"\n", 2, "agent.id", "control"},
	{"agent id all", "agent:\n  id: all\n", 2, "agent.id", "all"},
	{"agent id too long", "agent:\n  id: " + strings.Repeat("a", 129) + "\n", 2, "agent.id", "128"},
	{"log level", "agent:\n  logLevel: loud\n", 2, "agent.logLevel", "loud"},
	{"log format", "agent:\n  logFormat: xml\n", 2, "agent.logFormat", "xml"},
	{"log size negative", "agent:\n  logMaxSizeMB: -1\n", 2, "agent.logMaxSizeMB", "0"},
	{"log backups negative", "agent:\n  logMaxBackups: -1\n", 2, "agent.logMaxBackups", "0"},
	{"goMemLimit wraps uint64", "agent:\n  goMemLimit: 99999999999GiB\n", 2, "agent.goMemLimit", "too large"},
	{"goMemLimit over int64", "agent:\n  goMemLimit: 10000000000GB\n", 2, "agent.goMemLimit", "too large"},
	{"goGC", "agent:\n  goGC: 20000\n", 2, "agent.goGC", "10000"},

	// The file itself.
	{"second yaml document", "rtsp:\n  address: :8554\n---\nrtsp:\n  address: :9554\n", 4, "", "more than one YAML document"},

	// RTSP.
	{"unknown rtsp transport", "rtsp:\n  transports: [tcp, quic]\n", 2, "rtsp.transports", "quic"},
	{"no rtsp transport", "rtsp:\n  transports: []\n", 2, "rtsp.transports", "at least one"},
	{"write queue not a power of two", "rtsp:\n  writeQueueSize: 1000\n", 2, "rtsp.writeQueueSize", "power of two"},

	// WebRTC.
	{"ice server scheme", "webrtc:\n  iceServers:\n    - url: http://stun.example.com\n", 3, "webrtc.iceServers[0].url", "stun:"},
	{"ice server without host", "webrtc:\n  iceServers:\n    - url: \"stun:\"\n", 3, "webrtc.iceServers[0].url", "stun:"},
	{"ice server bad port", "webrtc:\n  iceServers:\n    - url: stun:stun.example.com:99999\n", 3, "webrtc.iceServers[0].url", "port"},
	{"turn without credentials", "webrtc:\n  iceServers:\n    - {url: \"stun:a.example.com:3478\"}\n    - {url: \"turn:b.example.com:3478\"}\n", 4, "webrtc.iceServers[1].username", "credentials"},
	{"no candidate to announce", "webrtc:\n  ipsFromInterfaces: false\n", 2, "webrtc.ipsFromInterfaces", "additionalHosts"},

	// Uplink.
	{"topic prefix empty", "uplink:\n  topicPrefix: \"\"\n", 2, "uplink.topicPrefix", "empty"},
	{"topic prefix wildcard", "uplink:\n  topicPrefix: site/+\n", 2, "uplink.topicPrefix", "+"},
	{"topic prefix hash", "uplink:\n  topicPrefix: \"site#\"\n", 2, "uplink.topicPrefix", "#"},
	{"topic prefix leading slash", "uplink:\n  topicPrefix: /camgate\n", 2, "uplink.topicPrefix", "/"},
	{"topic prefix trailing slash", "uplink:\n  topicPrefix: camgate/\n", 2, "uplink.topicPrefix", "/"},
	{"topic prefix $", "uplink:\n  topicPrefix: $SYS\n", 2, "uplink.topicPrefix", "$"},
	{"topic prefix NUL", "uplink:\n  topicPrefix: \"a\\0\"\n", 2, "uplink.topicPrefix", "control"},
	{"broker scheme", "uplink:\n  broker: http://broker\n", 2, "uplink.broker", "scheme"},
	{"broker port", "uplink:\n  broker: tcp://broker:99999\n", 2, "uplink.broker", "port"},
	{"broker without host", "uplink:\n  broker: tcp://\n", 2, "uplink.broker", "host"},
	{"broker password with slash", "uplink:\n  broker: tcp://u:pw/x@broker:1883\n", 2, "uplink.broker", "u:***@broker"},
	{"tls ca missing", "uplink:\n  broker: ssl://broker:8883\n  tls:\n    ca: /nonexistent/ca.pem\n", 4, "uplink.tls.ca", "ca.pem"},
	{"tls cert without key", "uplink:\n  tls:\n    cert: /nonexistent/c.pem\n", 3, "uplink.tls.cert", "key"},
	{"tls key without cert", "uplink:\n  tls:\n    key: /nonexistent/k.pem\n", 3, "uplink.tls.key", "cert"},
	{"health interval", "uplink:\n  healthInterval: 10ms\n", 2, "uplink.healthInterval", "1s"},
	{"outbox messages", "uplink:\n  outbox:\n    maxMessages: 0\n", 3, "uplink.outbox.maxMessages", "positive"},
	{"outbox bytes", "uplink:\n  outbox:\n    maxBytes: 1000\n", 3, "uplink.outbox.maxBytes", "4KiB"},
	{"outbox bytes over int64", "uplink:\n  outbox:\n    maxBytes: 18446744073709551615\n", 3, "uplink.outbox.maxBytes", "too large"},

	// Auth.
	{"user without name", "auth:\n  users:\n    - {user: any, permissions: [{action: read}]}\n    - {pass: x, permissions: [{action: read}]}\n", 4, "auth.users[1].user", "missing"},
	{"named user without pass", "auth:\n  users:\n    - user: ops\n      permissions: [{action: read}]\n", 3, "auth.users[0].pass", "password"},
	{"bad cidr", "auth:\n  users:\n    - user: any\n      ips:\n        - 10.0.0.0/8\n        - 10.0.0.0/33\n      permissions: [{action: read}]\n", 6, "auth.users[0].ips[1]", "10.0.0.0/33"},
	{"bad ip", "auth:\n  users:\n    - {user: any, ips: [bogus], permissions: [{action: read}]}\n", 3, "auth.users[0].ips[0]", "bogus"},
	{"bad action", "auth:\n  users:\n    - user: any\n      permissions:\n        - action: read\n        - action: fly\n", 6, "auth.users[0].permissions[1].action", "fly"},
	{"bad permission regexp", "auth:\n  users:\n    - user: any\n      permissions:\n        - {action: read, path: \"~(\"}\n", 5, "auth.users[0].permissions[0].path", "regexp"},
	{"bad permission path", "auth:\n  users:\n    - user: any\n      permissions:\n        - {action: read, path: \"a b\"}\n", 5, "auth.users[0].permissions[0].path", "path name"},
	{"sha256 not base64", "auth:\n  users:\n    - {user: any, permissions: [{action: read}]}\n    - {user: ops, pass: \"sha256:not*base64\", permissions: [{action: api}]}\n", 4, "auth.users[1].pass", "base64"},
	{"sha256 wrong length", "auth:\n  users:\n    - {user: ops, pass: \"sha256:" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + "\", permissions: [{action: api}]}\n", 3, "auth.users[0].pass", "32 bytes"},
	{"argon2 too few fields", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=19$c2FsdHNhbHQ$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "PHC"},
	{"argon2 parameters", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=19$m=65536$c2FsdHNhbHQ$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "m=M,t=T,p=P"},
	{"argon2 variant", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2d$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "argon2d"},
	{"argon2 version", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=16$m=65536,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "v=19"},
	{"argon2 params", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=19$m=lots,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "m="},
	{"argon2 no threads", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=19$m=65536,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "p="},
	{"argon2 salt", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=19$m=65536,t=1,p=4$not*b64$aGFzaGhhc2g\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "salt"},
	{"argon2 hash", "auth:\n  users:\n    - user: ops\n      pass: \"argon2:$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$\"\n      permissions: [{action: api}]\n", 4, "auth.users[0].pass", "hash"},

	// Paths.
	{"path name", "paths:\n  \"bad name\":\n    source: demo\n", 2, "paths.bad name", "path name"},
	{"path regexp", "paths:\n  \"~(\":\n    source: demo\n", 2, "paths.~(", "regexp"},
	{"source scheme", "paths:\n  cam:\n    source: http://10.0.0.1/s\n", 3, "paths.cam.source", "unsupported"},
	{"source port", "paths:\n  cam:\n    source: rtsp://10.0.0.1:70000/s\n", 3, "paths.cam.source", "port"},
	{"source missing", "paths:\n  cam:\n    sourceOnDemand: false\n", 2, "paths.cam.source", "missing"},
	{"path transport", "paths:\n  cam:\n    source: demo\n    rtspTransport: quic\n", 4, "paths.cam.rtspTransport", "quic"},
	{"path max readers", "paths:\n  cam:\n    source: demo\n    maxReaders: -1\n", 4, "paths.cam.maxReaders", "0"},
	{"runOnDemand on a camera", "paths:\n  cam:\n    source: rtsp://10.0.0.1/s\n    runOnDemand: ffmpeg -i x\n", 4, "paths.cam.runOnDemand", "source: publisher"},
	{"runOnInit on all_others", "paths:\n  all_others:\n    source: publisher\n    runOnInit: ffmpeg -i x\n", 4, "paths.all_others.runOnInit", "all_others"},
	{"runOnDemand open quote", "paths:\n  cam:\n    source: publisher\n    runOnDemand: ffmpeg -i 'x\n", 4, "paths.cam.runOnDemand", "quote"},
	{"runOnDemand start timeout", "pathDefaults:\n  runOnDemandStartTimeout: 0s\n", 2, "pathDefaults.runOnDemandStartTimeout", "positive"},
	{"default transport", "pathDefaults:\n  rtspTransport: quic\n", 2, "pathDefaults.rtspTransport", "quic"},
	{"default read timeout", "pathDefaults:\n  readTimeout: 0s\n", 2, "pathDefaults.readTimeout", "positive"},
	{"default max readers", "pathDefaults:\n  maxReaders: -2\n", 2, "pathDefaults.maxReaders", "0"},

	// Recording and playback.
	{"record path without %path", "paths:\n  cam:\n    source: demo\n    recordPath: /srv/rec/%Y-%m-%d_%H-%M-%S-%f\n", 4, "paths.cam.recordPath", "%path"},
	{"default record path without time", "pathDefaults:\n  recordPath: ./rec/%path\n", 2, "pathDefaults.recordPath", "%f"},
	{"record part too short", "paths:\n  cam:\n    source: demo\n    recordPartDuration: 10ms\n", 4, "paths.cam.recordPartDuration", "minimum"},
	{"record part over segment", "pathDefaults:\n  recordSegmentDuration: 2s\n  recordPartDuration: 3s\n", 3, "pathDefaults.recordPartDuration", "longer"},
	{"record budget tiny", "paths:\n  cam:\n    source: demo\n    recordMaxBytes: 1000\n", 4, "paths.cam.recordMaxBytes", "1MiB"},
	{"playback clash", "playback:\n  address: :8554\n", 2, "playback.address", "rtsp.address"},
	{"playback negative cap", "playback:\n  maxConnections: -1\n", 2, "playback.maxConnections", "no cap"},
	{"permission action", "auth:\n  users:\n    - {user: any, permissions: [{action: replay}]}\n", 3, "auth.users[0].permissions[0].action", "playback"},
}

// TestCheckConfigRefusesWhatRunWould: every case exits 1 with an error
// naming the file, the line and the key.
func TestCheckConfigRefusesWhatRunWould(t *testing.T) {
	for _, tc := range refusedConfigs {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "camgate.yml")
			if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Main([]string{"check-config", "-c", file}, &out, &errb)
			msg := errb.String()
			if code != 1 {
				t.Fatalf("exit %d, stderr %q", code, msg)
			}
			where := fmt.Sprintf("%s:%d: ", file, tc.line)
			if tc.key != "" {
				where += tc.key + ": "
			}
			if !strings.Contains(msg, where) {
				t.Errorf("error does not name %q:\n%s", where, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("error lacks %q:\n%s", tc.msg, msg)
			}
		})
	}
}

// TestCheckConfigAccepts: what run takes is not refused.
func TestCheckConfigAccepts(t *testing.T) {
	sum := sha256.Sum256([]byte("secret"))
	salt := []byte("0123456789abcdef")
	hash := argon2.IDKey([]byte("secret"), salt, 1, 64, 1, 32)
	phc := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(hash))
	for name, body := range map[string]string{
		"defaults":               "",
		"same port, other hosts": "rtsp:\n  address: 127.0.0.1:7000\napi:\n  address: 127.0.0.2:7000\n",
		"same port, tcp and udp": "rtsp:\n  address: :8000\n",
		"ports chosen by the os": "rtsp:\n  address: 127.0.0.1:0\nwebrtc:\n  address: 127.0.0.1:0\napi:\n  address: 127.0.0.1:0\n",
		"ipv4 and ipv6 loopback": "rtsp:\n  address: 127.0.0.1:7000\napi:\n  address: \"[::1]:7000\"\n",
		"udp off":                "rtsp:\n  transports: [tcp]\n  rtpAddress: :8189\n  rtcpAddress: :7\n",
		"webrtc off":             "webrtc:\n  address: \"\"\n  iceUDPMuxAddress: :8000\n  ipsFromInterfaces: false\n",
		"hashed passwords": fmt.Sprintf("auth:\n  users:\n    - {user: a, pass: \"sha256:%s\", permissions: [{action: read}]}\n    - {user: b, pass: \"argon2:%s\", ips: [10.0.0.1, \"::ffff:10.0.0.2\", 10.1.0.0/16], permissions: [{action: read, path: \"~^cam\"}]}\n",
			base64.StdEncoding.EncodeToString(sum[:]), phc),
		"turn with credentials": "webrtc:\n  iceServers:\n    - {url: \"turn:turn.example.com:3478?transport=udp\", username: u, password: p}\n    - {url: \"stun:stun.example.com\"}\n",
		"agent id and prefix":   "agent:\n  id: gate-7.hall_2\nuplink:\n  topicPrefix: site/3/camgate\n",
		"no uplink":             "uplink:\n  broker: \"\"\n",
		"demo removed":          "paths:\n  demo: null\n",
		"memory limit":          "agent:\n  goMemLimit: 48MiB\n",
		"additional hosts only": "webrtc:\n  ipsFromInterfaces: false\n  additionalHosts: [192.0.2.10]\n",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "camgate.yml")
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := Main([]string{"check-config", "-c", file}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
		})
	}
}

// TestCheckConfigBlamesEnvironment: a clash made by an environment
// variable names the variable.
func TestCheckConfigBlamesEnvironment(t *testing.T) {
	t.Setenv("CAMGATE_WEBRTC_ADDRESS", ":8554")
	var out, errb bytes.Buffer
	if code := Main([]string{"check-config"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "environment: CAMGATE_WEBRTC_ADDRESS: ") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
