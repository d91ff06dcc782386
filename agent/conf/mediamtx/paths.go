package mediamtx

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/internal/redact"
)

var pathDrops = sync.OnceValue(func() []dropRule {
	return rules(
		[3]string{`^rpiCamera`, "Raspberry Pi camera", "camgate has no Raspberry Pi camera source: publish it with a command (runOnInit)"},
		[3]string{`^(whep\w*|rtpSDP|moqTransport|sourceRedirect|srtReadPassphrase|srtPublishPassphrase)$`, "other protocols", "camgate pulls RTSP and RTSPS cameras and takes RTSP publishers"},
		[3]string{`^alwaysAvailable`, "always available", "camgate has no offline segment"},
		[3]string{`^forward$`, "forwarding", "camgate does not push streams to other servers"},
		[3]string{`^(rtspAnyPort|sourceAnyPortEnable|rtspRangeType|rtspRangeStart|rtspScale|rtspUDPSourcePortRange|rtspDemuxMpegts)$`, "RTSP source options", "not supported by camgate's RTSP client"},
		[3]string{`^runOn`, "hooks", "camgate runs runOnInit and runOnDemand only"},
		[3]string{`^(recordFormat|recordMaxPartSize)$`, "recording", "camgate records fragmented MP4 in parts of its own size"},
		[3]string{`^record`, "recording", "recording is off (no path has record: yes)"},
		[3]string{`^(overridePublisher|disablePublisherOverride)$`, "publishers", "camgate refuses a second publisher while the first is connected"},
		[3]string{`^(useAbsoluteTimestamp|fallback)$`, "other", "not supported by camgate"},
	)
})

// legacyCreds are converted into auth.users by finishAuth.
var legacyCreds = map[string]bool{"readUser": true, "readPass": true, "readIPs": true, "publishUser": true, "publishPass": true, "publishIPs": true}

// anyRecord tells whether pathDefaults or a path records.
func (c *converter) anyRecord() bool {
	check := func(n *yaml.Node) bool {
		if v := mapNode(n, "record"); v != nil {
			b, _ := boolOf(v)
			return b
		}
		return false
	}
	if v := c.top["record"]; v != nil {
		if b, _ := boolOf(v); b {
			return true
		}
	}
	if check(c.top["pathDefaults"]) {
		return true
	}
	if p := c.top["paths"]; p != nil && p.Kind == yaml.MappingNode {
		for i := 1; i < len(p.Content); i += 2 {
			if check(p.Content[i]) {
				return true
			}
		}
	}
	return false
}

// pathValue converts the value of one path key. ok is false when the key
// is not one camgate has (the caller lists it as dropped).
func (c *converter) pathValue(key string, n *yaml.Node) (v any, ok bool, err error) {
	dur := func() (any, bool, error) {
		d, err := durationOf(n)
		if err != nil {
			return nil, true, err
		}
		return formatDuration(d), true, nil
	}
	boolean := func() (any, bool, error) {
		b, ok := boolOf(n)
		if !ok {
			return nil, true, fmt.Errorf("%q is not yes or no", n.Value)
		}
		return b, true, nil
	}
	switch key {
	case "sourceOnDemand", "runOnInitRestart", "runOnDemandRestart":
		return boolean()
	case "sourceOnDemandStartTimeout", "sourceOnDemandCloseAfter", "runOnDemandStartTimeout", "runOnDemandCloseAfter":
		return dur()
	case "maxReaders":
		i, err := strconv.Atoi(n.Value)
		if err != nil || i < 0 {
			return nil, true, fmt.Errorf("%q is not a number of readers", n.Value)
		}
		return i, true, nil
	case "rtspTransport", "sourceProtocol":
		switch n.Value {
		case "automatic", "tcp", "udp", "multicast":
			return n.Value, true, nil
		}
		return nil, true, fmt.Errorf("%q is not automatic, tcp, udp or multicast", n.Value)
	case "runOnInit", "runOnDemand", "sourceFingerprint":
		return n.Value, true, nil
	}
	if c.record {
		switch key {
		case "record":
			return boolean()
		case "recordPath":
			return n.Value, true, nil
		case "recordPartDuration", "recordSegmentDuration", "recordDeleteAfter":
			return dur()
		}
	}
	return nil, false, nil
}

// camgateKey is the camgate name of a path key MediaMTX spells otherwise.
func camgateKey(k string) string {
	if k == "sourceProtocol" {
		return "rtspTransport"
	}
	return k
}

// pathEntry is a path of the output while it is built.
type pathEntry struct {
	name, from string
	regexp     bool
	publisher  bool
	items      []*item
}

func (e *pathEntry) has(key string) bool {
	for _, it := range e.items {
		if it.key == key {
			return true
		}
	}
	return false
}

func (c *converter) paths() {
	pd := c.top["pathDefaults"]
	if pd != nil && pd.Kind != yaml.MappingNode {
		pd = nil
	}
	// The old global record keys are pathDefaults' keys.
	defaults := &yaml.Node{Kind: yaml.MappingNode}
	if pd != nil {
		defaults.Content = append(defaults.Content, pd.Content...)
	}
	for _, k := range []string{"record", "recordPath", "recordFormat", "recordPartDuration", "recordSegmentDuration", "recordDeleteAfter", "recordMaxPartSize"} {
		if v := c.top[k]; v != nil && mapNode(defaults, k) == nil {
			defaults.Content = append(defaults.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
		}
	}
	defSource := "publisher"
	if v := mapNode(defaults, "source"); v != nil && !isEmpty(v) {
		defSource = v.Value
	}
	// Keys of pathDefaults camgate has per path only: copied into each path.
	var perPath []*item
	for i := 0; i+1 < len(defaults.Content); i += 2 {
		k, n := defaults.Content[i].Value, defaults.Content[i+1]
		key := "pathDefaults." + k
		if k == "source" || legacyCreds[k] {
			continue
		}
		if isEmpty(n) {
			c.res.Empty++
			continue
		}
		v, ok, err := c.pathValue(k, n)
		switch {
		case err != nil:
			c.drop(key, n, "path keys", err.Error())
		case !ok:
			g, r := classify(k, pathDrops())
			c.drop(key, n, g, r)
		case Known("pathDefaults." + camgateKey(k)):
			c.out.set("pathDefaults", camgateKey(k), v, "pathDefaults."+k)
		case Known("paths." + camgateKey(k)):
			perPath = append(perPath, &item{key: camgateKey(k), value: render(v), note: "pathDefaults." + k})
		default:
			c.out.set("pathDefaults", camgateKey(k), v, "pathDefaults."+k)
		}
	}
	if !c.out.has("pathDefaults", "sourceOnDemand") {
		c.out.set("pathDefaults", "sourceOnDemand", false, "MediaMTX's default: cameras pulled all the time (camgate's own default is true: only while watched)")
	}

	ps := c.top["paths"]
	var entries []*pathEntry
	seen := map[string]bool{}
	if ps != nil && ps.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(ps.Content); i += 2 {
			if e := c.path(ps.Content[i].Value, ps.Content[i+1], defSource, perPath, seen); e != nil {
				entries = append(entries, e)
			}
		}
	}
	s := c.out.section("paths")
	for _, e := range entries {
		it := &item{key: e.name, kids: e.items, note: e.from}
		if len(e.items) == 0 {
			it.value = "{}"
		}
		s.items = append(s.items, it)
	}
	if !seen[conf.CatchAll] {
		s.items = append(s.items, &item{key: conf.CatchAll, value: "null", note: "MediaMTX has no catch-all here: other names are refused (camgate's default all_others removed)"})
	}
	s.head = append(s.head, "camgate's built-in test pattern, path demo, stays; paths: {demo: null} removes it.")
}

var varRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$(\{?)(G[0-9]+|MTX_QUERY|MTX_PATH)\b`) })

// path converts one entry of paths; nil when it is dropped.
func (c *converter) path(name string, n *yaml.Node, defSource string, perPath []*item, seen map[string]bool) *pathEntry {
	key := "paths." + name
	e := &pathEntry{name: name}
	switch {
	case name == "all":
		e.name, e.from = conf.CatchAll, `"all", MediaMTX's old name of all_others`
	case name == conf.CatchAll:
	default:
		if err := conf.ValidatePathEntry(name); err != nil {
			c.drop(key, n, "paths", err.Error())
			return nil
		}
	}
	if seen[e.name] {
		c.drop(key, n, "paths", "all_others is set as well")
		return nil
	}
	e.regexp = e.name == conf.CatchAll || strings.HasPrefix(e.name, "~")
	if n.Kind != yaml.MappingNode {
		n = &yaml.Node{Kind: yaml.MappingNode} // "cam:" with no value: every key from pathDefaults
	}
	src, srcNote := defSource, "pathDefaults.source"
	if v := mapNode(n, "source"); v != nil && !isEmpty(v) {
		src, srcNote = v.Value, ""
	} else if mapNode(c.top["pathDefaults"], "source") == nil {
		srcNote = "MediaMTX's default source"
	}
	if src != conf.SourcePublisher {
		if err := conf.ValidateSource(src); err != nil {
			c.res.Drops = append(c.res.Drops, Drop{Key: key, Value: "source: " + redact.URL(src), Group: "paths",
				Reason: "not converted: camgate pulls rtsp:// and rtsps:// cameras and takes publishers"})
			return nil
		}
		if varRe().MatchString(src) {
			c.res.Drops = append(c.res.Drops, Drop{Key: key, Value: "source: " + redact.URL(src), Group: "paths",
				Reason: "not converted: camgate does not put $G1, $MTX_PATH or $MTX_QUERY into sources"})
			return nil
		}
	}
	e.publisher = src == conf.SourcePublisher
	seen[e.name] = true
	e.items = append(e.items, &item{key: "source", value: render(src), note: srcNote})
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		pk := key + "." + k
		if k == "source" || legacyCreds[k] {
			continue
		}
		if isEmpty(v) {
			c.res.Empty++
			continue
		}
		if reason := c.notHere(e, k); reason != "" {
			c.drop(pk, v, "path keys", reason)
			continue
		}
		val, ok, err := c.pathValue(k, v)
		switch {
		case err != nil:
			c.drop(pk, v, "path keys", err.Error())
		case !ok:
			g, r := classify(k, pathDrops())
			c.drop(pk, v, g, r)
		case !e.has(camgateKey(k)):
			note := ""
			if k != camgateKey(k) {
				note = k
			}
			e.items = append(e.items, &item{key: camgateKey(k), value: render(val), note: note, off: !Known("paths." + camgateKey(k))})
		}
	}
	for _, it := range perPath {
		if e.has(it.key) || c.notHere(e, it.key) != "" {
			continue
		}
		cp := *it
		e.items = append(e.items, &cp)
	}
	return e
}

// notHere says why a key cannot be on this path ("" when it can), with
// MediaMTX's own rules.
func (c *converter) notHere(e *pathEntry, k string) string {
	switch {
	case k == "runOnInit" && e.regexp:
		return "runOnInit cannot be on all_others or a ~regexp entry"
	case k == "runOnDemand" && !e.publisher:
		return "runOnDemand needs source: publisher"
	}
	return ""
}
