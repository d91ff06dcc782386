package mediamtx

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Report lists what was not carried over, one line per key, grouped by
// reason in the order they first appear, then the notes.
func (r *Result) Report(name string) string {
	var b strings.Builder
	if len(r.Drops) > 0 {
		fmt.Fprintf(&b, "Not carried over from %s (%d keys):\n", name, len(r.Drops))
	}
	var order []string
	byGroup := map[string][]Drop{}
	for _, d := range r.Drops {
		g := d.Group + ": " + d.Reason
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], d)
	}
	for _, g := range order {
		fmt.Fprintf(&b, "  %s\n", g)
		for _, d := range byGroup[g] {
			fmt.Fprintf(&b, "    %s: %s\n", d.Key, d.Value)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("Differences to know about:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	if r.Empty > 0 {
		fmt.Fprintf(&b, "%d keys without a value (they set nothing) were skipped.\n", r.Empty)
	}
	return b.String()
}

// characteristic are top-level keys of MediaMTX's configuration that
// camgate's has under sections, or not at all.
var characteristic = []string{
	"rtspAddress", "rtspTransports", "protocols", "rtpAddress", "authInternalUsers", "authMethod",
	"webrtcAddress", "hlsAddress", "rtmpAddress", "srtAddress", "logDestinations", "readBufferCount",
	"writeQueueSize", "apiAddress", "metricsAddress", "playbackAddress", "webrtcICEServers2",
	"webrtcLocalUDPAddress", "rtmp", "hls", "srt", "logLevel", "readTimeout",
}

// Detect returns the top-level keys of src that mark it as a MediaMTX
// configuration (at most three), or nil when it does not look like one.
func Detect(src []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	root := doc.Content[0]
	var found []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i].Value
		if root.Content[i+1].Kind == yaml.MappingNode {
			// MediaMTX's are scalars and lists; a section under one of
			// these names is camgate's own (hls: {address: ...}).
			continue
		}
		for _, c := range characteristic {
			if k == c && len(found) < 3 {
				found = append(found, k)
			}
		}
	}
	return found
}
