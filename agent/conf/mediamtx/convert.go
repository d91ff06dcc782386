package mediamtx

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/internal/redact"
)

// Drop is a MediaMTX key that was not carried over.
type Drop struct {
	Key    string // "rtmpAddress", "paths.cam1.rtspAnyPort"
	Value  string // as written, secrets masked
	Group  string // what it is about, for grouping
	Reason string // why camgate does without it
}

// Result is a converted configuration.
type Result struct {
	// YAML is the camgate configuration, with comments.
	YAML []byte
	// Drops are the keys left behind, in file order.
	Drops []Drop
	// Notes are differences in behaviour worth knowing about.
	Notes []string
	// Empty counts keys without a value (null, "" or []): they set nothing
	// and are neither converted nor listed.
	Empty int
}

// ErrNotMediaMTX is returned for a file that is not a YAML mapping.
var ErrNotMediaMTX = errors.New("not a MediaMTX configuration")

type converter struct {
	name   string
	out    *output
	res    Result
	top    map[string]*yaml.Node
	record bool // some path records: the record keys are carried over
	users  []string
	// legacy per-path credentials (readUser...) seen
	legacy []legacyCred
}

type legacyCred struct {
	path, action, user, pass string
	ips                      []string
}

// Convert converts the MediaMTX configuration src (named name in the
// comments it writes).
func Convert(src []byte, name string) (*Result, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: %w", name, ErrNotMediaMTX)
	}
	root := doc.Content[0]
	c := &converter{name: name, out: newOutput(), top: map[string]*yaml.Node{}}
	var order []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i].Value
		c.top[k] = root.Content[i+1]
		order = append(order, k)
	}
	c.record = c.anyRecord()
	for _, k := range order {
		c.global(k, c.top[k])
	}
	c.finishAuth()
	c.paths()
	header := []string{
		"camgate configuration converted from " + name + " by camgate import-mediamtx.",
		"Each key names the MediaMTX key it came from; what camgate does without",
		"was listed when this file was written. Check it with:",
		"  camgate check-config -c camgate.yml",
		"Keys marked \"not in this camgate yet\" are commented out: this build",
		"does not have them.",
	}
	c.res.YAML = c.out.bytes(header)
	return &c.res, nil
}

// ---------------------------------------------------------------------------
// Values.

func isEmpty(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.ShortTag() == "!!null" || n.Value == ""
	case yaml.SequenceNode, yaml.MappingNode:
		return len(n.Content) == 0
	}
	return false
}

// switchedOn reads a server's switch: "hls: yes", or the older
// "hlsDisable: no".
func switchedOn(k string, n *yaml.Node) bool {
	on, _ := boolOf(n)
	if strings.HasSuffix(k, "Disable") {
		on = !on
	}
	return on
}

// serverAddress is where a server switched on listens: its address key
// (hlsAddress), or MediaMTX's default when that is unset.
func (c *converter) serverAddress(key, def string) string {
	if a := c.top[key]; a != nil && !isEmpty(a) {
		return a.Value
	}
	return def
}

// boolOf reads a boolean as MediaMTX does (YAML 1.1 yes/no/on/off too).
func boolOf(n *yaml.Node) (bool, bool) {
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

var daysRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)d`) })

// durationOf reads a MediaMTX duration: a Go duration, optionally after a
// number of days ("1d", "2d12h").
func durationOf(n *yaml.Node) (time.Duration, error) {
	s := strings.TrimSpace(n.Value)
	var d time.Duration
	if m := daysRe().FindStringSubmatch(s); m != nil {
		days, _ := strconv.Atoi(m[1])
		d = time.Duration(days) * 24 * time.Hour
		s = s[len(m[0]):]
		if s == "" {
			return d, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", n.Value)
	}
	return d + v, nil
}

// formatDuration writes d the short way camgate's examples do: 24h, 90s.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

func strList(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			out = append(out, c.Value)
		}
	}
	return out
}

// isSecret tells whether a key holds a secret (a password, a token, a
// passphrase).
func isSecret(key string) bool {
	k := strings.ToLower(key[strings.LastIndexAny(key, ".]")+1:])
	return strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

// shown is a value for the list of dropped keys, secrets masked.
func shown(key string, n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if isSecret(key) && n.Value != "" {
			return conf.Mask
		}
		return redact.String(n.Value)
	}
	return redact.String(encodeFlow(masked(n)))
}

// masked is a copy of n with the values of secret keys masked.
func masked(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 1 && isSecret(n.Content[i-1].Value) && k.Kind == yaml.ScalarNode && k.Value != "" {
			c.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Value: conf.Mask}
			continue
		}
		c.Content[i] = masked(k)
	}
	return &c
}

func (c *converter) drop(key string, n *yaml.Node, group, reason string) {
	c.res.Drops = append(c.res.Drops, Drop{Key: key, Value: shown(key, n), Group: group, Reason: reason})
}

func (c *converter) note(format string, args ...any) {
	c.res.Notes = append(c.res.Notes, fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------------------
// Global keys.

// dropRule classifies a key camgate has no use for.
type dropRule struct {
	re            *regexp.Regexp
	group, reason string
}

func rules(rs ...[3]string) []dropRule {
	out := make([]dropRule, len(rs))
	for i, r := range rs {
		out[i] = dropRule{regexp.MustCompile(r[0]), r[1], r[2]}
	}
	return out
}

// globalDrops and the other tables are built on first use: compiling
// their expressions at start-up would cost every agent ~0.2 MB that only
// import-mediamtx and check-config need.
var globalDrops = sync.OnceValue(func() []dropRule {
	return rules(
		[3]string{`^(rtspsAddress|srtpAddress|srtcpAddress|multicast\w*|serverKey|serverCert|rtspServerKey|rtspServerCert)$`, "RTSPS, SRTP and multicast", "camgate's RTSP server speaks plain RTSP over TCP and UDP"},
		[3]string{`^rtmp`, "RTMP", "camgate serves RTSP and WebRTC, not RTMP"},
		[3]string{`^srt`, "SRT", "camgate has no SRT server"},
		[3]string{`^moq`, "MoQ", "camgate has no MoQ server"},
		[3]string{`(Encryption|ServerKey|ServerCert|AllowOrigins?|TrustedProxies)$`, "TLS, CORS and proxies of the HTTP listeners", "camgate's listeners are plain HTTP on the LAN (put a reverse proxy in front for TLS); its pages and API are same-origin only"},
		[3]string{`^hls`, "HLS tuning", "camgate's HLS has its own fixed settings"},
		[3]string{`^webrtc(STUNGatherTimeout|HandshakeTimeout|TrackGatherTimeout)$`, "WebRTC timeouts", "fixed in camgate"},
		[3]string{`^(auth(HTTP|JWT)\w*|externalAuthenticationURL)$`, "external authentication", "camgate checks its own users (auth.users) only"},
		[3]string{`^runOn`, "connection hooks", "camgate runs a path's runOnInit and runOnDemand only"},
		[3]string{`^(writeTimeout|udpMaxPayloadSize|udpReadBufferSize|rtspUDPReadBufferSize)$`, "network tuning", "camgate sets these itself"},
		[3]string{`^(sysLogPrefix|dumpPackets)$`, "logging", "camgate logs to the console and to agent.logFile"},
		[3]string{`^(metrics|metricsAddress)$`, "metrics", "camgate serves Prometheus /metrics on its local API listener (api.address)"},
		[3]string{`^pprofAddress$`, "metrics", "with agent.pprof on, camgate serves /debug/pprof on its local API listener"},
		[3]string{`^(rtspAuthMethods|authMethods)$`, "authentication", "camgate offers Basic and Digest (Basic only when a password is hashed)"},
	)
})

func classify(key string, rs []dropRule) (string, string) {
	for _, r := range rs {
		if r.re.MatchString(key) {
			return r.group, r.reason
		}
	}
	return "other", "not known to camgate import-mediamtx"
}

// meaningfulEmpty are global keys whose empty value says something
// (an empty webrtcLocalUDPAddress turns ICE over UDP off).
var meaningfulEmpty = map[string]bool{"webrtcLocalUDPAddress": true, "webrtcICEUDPMuxAddress": true, "authInternalUsers": true}

func (c *converter) global(k string, n *yaml.Node) {
	from := k
	if isEmpty(n) && !meaningfulEmpty[k] {
		c.res.Empty++
		return
	}
	switch k {
	case "pathDefaults", "paths":
		return // c.paths
	case "logLevel":
		switch n.Value {
		case "error", "warn", "info", "debug":
			c.out.set("agent", "logLevel", n.Value, from)
		default:
			c.drop(k, n, "logging", "not a level camgate knows")
		}
	case "logDestinations":
		dests := strList(n)
		if slices.Contains(dests, "file") {
			file := "mediamtx.log"
			if f := c.top["logFile"]; f != nil && !isEmpty(f) {
				file = f.Value
			}
			c.out.set("agent", "logFile", file, "logDestinations has file; logFile")
		}
		if slices.Contains(dests, "syslog") {
			c.drop(k, n, "logging", "camgate has no syslog output; it logs to the console and to agent.logFile")
		}
	case "logFile":
		if d := c.top["logDestinations"]; d == nil || !slices.Contains(strList(d), "file") {
			c.drop(k, n, "logging", "unused by MediaMTX: logDestinations has no file")
		}
	case "logStructured":
		if b, _ := boolOf(n); b {
			c.out.set("agent", "logFormat", "json", from)
		} else {
			c.out.set("agent", "logFormat", "console", from)
		}
	case "readTimeout":
		if d, err := durationOf(n); err == nil && d > 0 {
			c.out.set("pathDefaults", "readTimeout", formatDuration(d), from+" (global in MediaMTX)")
		} else {
			c.drop(k, n, "network tuning", "not a usable duration")
		}
	case "writeQueueSize", "readBufferCount":
		v, err := strconv.Atoi(n.Value)
		switch {
		case err == nil && v == 512:
			c.drop(k, n, "network tuning", "MediaMTX's default; camgate's own (2048) suits its fan-out")
		case err == nil && v >= 16 && v&(v-1) == 0:
			c.out.set("rtsp", "writeQueueSize", v, from)
		default:
			c.drop(k, n, "network tuning", "camgate needs a power of two, at least 16")
		}
	case "authMethod":
		if n.Value != "internal" {
			c.drop(k, n, "external authentication", "camgate checks its own users (auth.users) only: the users below are all it knows")
			c.note("authMethod is %s: MediaMTX asked another server who may do what; camgate only knows auth.users", n.Value)
		}
	case "authInternalUsers":
		c.authUsers(n)
	case "api":
		if switchedOn(k, n) {
			c.out.set("api", "address", c.serverAddress("apiAddress", ":9997"), "api: yes; apiAddress")
		} else {
			c.drop(k, n, "control API", "camgate's local API always runs, on 127.0.0.1:9997 unless api.address says otherwise")
		}
	case "apiAddress":
		if a := c.top["api"]; a == nil {
			c.drop(k, n, "control API", "unused by MediaMTX: api is off")
		} else if b, _ := boolOf(a); !b {
			c.drop(k, n, "control API", "unused by MediaMTX: api is off")
		}
	case "pprof":
		if b, _ := boolOf(n); b {
			c.out.set("agent", "pprof", true, from+" (served on the API listener)")
		}
	case "playback":
		if switchedOn(k, n) {
			c.out.set("playback", "address", c.serverAddress("playbackAddress", ":9996"), "playback: yes; playbackAddress")
		} else {
			c.out.set("playback", "address", "", "playback: no")
		}
	case "playbackAddress", "hlsAddress", "webrtcAddress":
		// with playback, hls and webrtc
	case "rtsp", "rtspDisable":
		if !switchedOn(k, n) {
			c.drop(k, n, "RTSP", "camgate always serves RTSP")
		}
	case "rtspTransports", "protocols":
		var ts []string
		for _, t := range strList(n) {
			if t == "tcp" || t == "udp" {
				ts = append(ts, t)
			}
		}
		slices.Sort(ts) // tcp before udp, as camgate writes them
		if len(ts) == 0 {
			c.drop(k, n, "RTSPS, SRTP and multicast", "neither tcp nor udp: camgate cannot serve multicast only")
			break
		}
		note := from
		if slices.Contains(strList(n), "multicast") {
			note += "; multicast left out (camgate's server has none)"
		}
		c.out.set("rtsp", "transports", ts, note)
	case "rtspEncryption", "encryption":
		if n.Value != "no" && n.Value != "false" {
			c.drop(k, n, "RTSPS, SRTP and multicast", "camgate's RTSP server has no RTSPS: plain RTSP is served instead")
		}
	case "rtspAddress":
		c.out.set("rtsp", "address", n.Value, from)
	case "rtpAddress", "rtcpAddress":
		c.out.set("rtsp", k, n.Value, from)
	case "hls", "hlsDisable":
		if switchedOn(k, n) {
			c.out.set("hls", "address", c.serverAddress("hlsAddress", ":8888"), "hls: yes; hlsAddress")
		} else {
			c.out.set("hls", "address", "", from)
		}
	case "webrtc", "webrtcDisable":
		if switchedOn(k, n) {
			c.out.set("webrtc", "address", c.serverAddress("webrtcAddress", ":8889"), "webrtc: yes; webrtcAddress")
		} else {
			c.out.set("webrtc", "address", "", from)
		}
	case "webrtcLocalUDPAddress", "webrtcICEUDPMuxAddress":
		if isEmpty(n) {
			c.drop(k, n, "WebRTC", "camgate always listens for ICE over UDP (webrtc.iceUDPMuxAddress, default :8189)")
			break
		}
		c.out.set("webrtc", "iceUDPMuxAddress", n.Value, from)
	case "webrtcLocalTCPAddress", "webrtcICETCPMuxAddress":
		c.out.set("webrtc", "iceTCPMuxAddress", n.Value, from)
	case "webrtcIPsFromInterfaces":
		b, _ := boolOf(n)
		c.out.set("webrtc", "ipsFromInterfaces", b, from)
	case "webrtcIPsFromInterfacesList":
		c.out.set("webrtc", "ipsFromInterfacesList", strList(n), from)
	case "webrtcAdditionalHosts", "webrtcICEHostNAT1To1IPs":
		hosts := strList(n)
		if k == "webrtcAdditionalHosts" {
			if old := c.top["webrtcICEHostNAT1To1IPs"]; old != nil {
				hosts = append(hosts, strList(old)...)
			}
		} else if c.top["webrtcAdditionalHosts"] != nil {
			break
		}
		c.out.set("webrtc", "additionalHosts", hosts, from)
	case "webrtcICEServers2":
		c.iceServers(k, n)
	case "webrtcICEServers":
		if c.top["webrtcICEServers2"] != nil {
			c.drop(k, n, "WebRTC", "replaced by webrtcICEServers2")
			break
		}
		c.iceServers(k, n)
	case "record", "recordPath", "recordFormat", "recordPartDuration", "recordSegmentDuration", "recordDeleteAfter", "recordMaxPartSize":
		// the old global spelling of pathDefaults' keys: see paths
	default:
		g, r := classify(k, globalDrops())
		c.drop(k, n, g, r)
	}
}

func (c *converter) iceServers(k string, n *yaml.Node) {
	var list []string
	for i, s := range n.Content {
		key := fmt.Sprintf("%s[%d]", k, i)
		var url, user, pass string
		clientOnly := false
		if s.Kind == yaml.ScalarNode { // webrtcICEServers: ["stun:host:3478"]
			url = s.Value
		} else {
			for j := 0; j+1 < len(s.Content); j += 2 {
				v := s.Content[j+1]
				switch s.Content[j].Value {
				case "url":
					url = v.Value
				case "username":
					user = v.Value
				case "password":
					pass = v.Value
				case "clientOnly":
					clientOnly, _ = boolOf(v)
				}
			}
		}
		switch {
		case clientOnly:
			c.drop(key, s, "WebRTC", "clientOnly: meant for browsers only; camgate's player uses the server's own list")
			continue
		case user == "AUTH_SECRET":
			c.drop(key, s, "WebRTC", "TURN with a shared secret (AUTH_SECRET) is not supported; give a username and password")
			continue
		case !strings.HasPrefix(url, "stun:") && !strings.HasPrefix(url, "turn:") && !strings.HasPrefix(url, "turns:"):
			c.drop(key, s, "WebRTC", "not a stun:, turn: or turns: URL")
			continue
		}
		list = append(list, render(flowMap("url", url, "username", nonEmpty(user), "password", nonEmpty(pass))))
	}
	if len(list) == 0 {
		return
	}
	s := c.out.section("webrtc")
	s.items = append(s.items, &item{key: "iceServers", list: list, note: k, off: !Known("webrtc.iceServers")})
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ---------------------------------------------------------------------------
// Users.

// authUsers converts authInternalUsers.
func (c *converter) authUsers(n *yaml.Node) {
	for i, u := range n.Content {
		key := fmt.Sprintf("authInternalUsers[%d]", i)
		var name, pass string
		var ips []string
		var perms []*yaml.Node
		for j := 0; j+1 < len(u.Content); j += 2 {
			v := u.Content[j+1]
			switch u.Content[j].Value {
			case "user":
				name = v.Value
			case "pass":
				pass = v.Value
			case "ips":
				ips = strList(v)
			case "permissions":
				perms = v.Content
			}
		}
		if strings.HasPrefix(name, "sha256:") || strings.HasPrefix(name, "argon2:") {
			c.drop(key, u, "authentication", "a hashed user name: camgate needs the name as typed (its password may be hashed)")
			continue
		}
		if name != "any" && pass == "" {
			c.drop(key, u, "authentication", fmt.Sprintf("user %q has no password (MediaMTX then takes any password); camgate needs one", name))
			continue
		}
		if name == "any" {
			pass = ""
		}
		for _, ip := range ips {
			if _, _, err := net.ParseCIDR(ip); err != nil && net.ParseIP(ip) == nil {
				c.drop(key, u, "authentication", fmt.Sprintf("ips: %q is neither an IP nor a CIDR", ip))
				name = ""
				break
			}
		}
		if name == "" {
			continue
		}
		pl := &yaml.Node{Kind: yaml.SequenceNode}
		hasAPI := false
		for _, p := range perms {
			if a := mapValue(p, "action"); a == "api" {
				hasAPI = true
			}
		}
		for j, p := range perms {
			action, path := mapValue(p, "action"), mapValue(p, "path")
			switch action {
			case "publish", "read", "playback", "api":
			case "metrics", "pprof":
				if !hasAPI {
					c.drop(fmt.Sprintf("%s.permissions[%d]", key, j), p, "authentication",
						"camgate serves /metrics and pprof under the api permission, which would grant the whole API: add {action: api} by hand if that is meant")
				}
				continue
			default:
				c.drop(fmt.Sprintf("%s.permissions[%d]", key, j), p, "authentication", "not an action camgate knows")
				continue
			}
			if path != "" {
				if path == "all" || path == "all_others" {
					path = "~^.*$"
				}
				if err := conf.ValidatePathEntry(path); err != nil {
					c.drop(fmt.Sprintf("%s.permissions[%d]", key, j), p, "authentication", err.Error())
					continue
				}
			}
			var pn any
			if path != "" {
				pn = path
			}
			pl.Content = append(pl.Content, flowMap("action", action, "path", pn))
		}
		if ips == nil {
			ips = []string{}
		}
		c.users = append(c.users, render(flowMap("user", name, "pass", pass, "ips", ips, "permissions", pl)))
	}
}

func mapValue(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// finishAuth writes auth.users: authInternalUsers, or the users MediaMTX
// makes of the old per-path credentials.
func (c *converter) finishAuth() {
	from := "authInternalUsers"
	if c.collectLegacy(); len(c.legacy) > 0 {
		from = "readUser, readPass, publishUser... of the paths, as MediaMTX converts them"
		c.users = []string{
			render(flowMap("user", "any", "pass", "", "ips", []string{}, "permissions", []any{map[string]string{"action": "playback"}})),
			render(flowMap("user", "any", "pass", "", "ips", []string{"127.0.0.1/32", "::1/128"}, "permissions", []any{map[string]string{"action": "api"}})),
		}
		for _, l := range c.legacy {
			c.users = append(c.users, render(flowMap("user", l.user, "pass", l.pass, "ips", l.ips, "permissions", []any{map[string]string{"action": l.action, "path": l.path}})))
		}
		if c.top["authInternalUsers"] != nil {
			c.note("authInternalUsers and the old per-path credentials are both set (MediaMTX refuses that): the per-path ones were used")
		}
	} else if c.top["authInternalUsers"] == nil {
		c.note("authInternalUsers is not set: MediaMTX then lets anybody publish and read; camgate's default users let anybody read and only this box publish without credentials (add a user with the publish permission for other machines)")
		return
	}
	s := c.out.section("auth")
	s.items = append(s.items, &item{key: "users", list: c.users, note: from})
}

// collectLegacy reads readUser/readPass/readIPs/publishUser/publishPass/
// publishIPs of every path, as MediaMTX's deprecated credentials mode does.
func (c *converter) collectLegacy() {
	paths := c.top["paths"]
	if paths == nil || paths.Kind != yaml.MappingNode {
		return
	}
	found := false
	for i := 0; i+1 < len(paths.Content); i += 2 {
		for _, k := range []string{"readUser", "readPass", "readIPs", "publishUser", "publishPass", "publishIPs"} {
			if v := mapNode(paths.Content[i+1], k); v != nil && !isEmpty(v) {
				found = true
			}
		}
	}
	if !found {
		return
	}
	for i := 0; i+1 < len(paths.Content); i += 2 {
		name, p := paths.Content[i].Value, paths.Content[i+1]
		if name == "all" || name == "all_others" {
			name = "~^.*$"
		}
		for _, action := range []string{"publish", "read"} {
			l := legacyCred{path: name, action: action, user: "any", ips: []string{"0.0.0.0/0"}}
			if v := mapNode(p, action+"User"); v != nil && v.Value != "" {
				l.user = v.Value
			}
			if v := mapNode(p, action+"Pass"); v != nil && v.Value != "" {
				l.pass = v.Value
			}
			if v := mapNode(p, action+"IPs"); v != nil && len(strList(v)) > 0 {
				l.ips = strList(v)
			}
			if l.user == "any" {
				l.pass = ""
			}
			c.legacy = append(c.legacy, l)
		}
	}
}

func mapNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
