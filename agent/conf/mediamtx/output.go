package mediamtx

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/agent/conf"
)

// item is one key of the output with its value rendered as YAML, the
// comment that says where it came from, and whether this camgate knows
// the key (an unknown one is written commented out).
type item struct {
	key   string
	value string // one line of YAML (flow style)
	note  string
	off   bool
	kids  []*item  // a nested mapping (a path entry) when value is ""
	list  []string // block list items (auth.users) when value is ""
	head  []string // comment lines above the key
}

// section is a top-level key of the output.
type section struct {
	name  string
	head  []string
	items []*item
}

// output collects the converted configuration in a fixed section order.
type output struct {
	sections map[string]*section
}

var sectionOrder = []string{"agent", "rtsp", "webrtc", "hls", "api", "playback", "auth", "pathDefaults", "paths"}

func newOutput() *output { return &output{sections: map[string]*section{}} }

func (o *output) section(name string) *section {
	s := o.sections[name]
	if s == nil {
		s = &section{name: name}
		o.sections[name] = s
	}
	return s
}

// set adds section.key = v with a note; a key set twice keeps the first
// (a current MediaMTX key wins over its deprecated spelling, which the
// caller adds after).
func (o *output) set(sec, key string, v any, note string) {
	s := o.section(sec)
	for _, it := range s.items {
		if it.key == key {
			return
		}
	}
	s.items = append(s.items, &item{key: key, value: render(v), note: note, off: !Known(sec + "." + key)})
}

func (o *output) has(sec, key string) bool {
	for _, it := range o.section(sec).items {
		if it.key == key {
			return true
		}
	}
	return false
}

// render writes v as one line of YAML.
func render(v any) string {
	if n, ok := v.(*yaml.Node); ok {
		return encodeFlow(n)
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return encodeFlow(&n)
}

func encodeFlow(n *yaml.Node) string {
	setFlow(n)
	b, err := yaml.Marshal(n)
	if err != nil {
		return `""`
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		setFlow(c)
	}
}

// flowMap builds an ordered mapping from key, value pairs; nil values are
// left out.
func flowMap(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			continue
		}
		var k, v yaml.Node
		_ = k.Encode(kv[i])
		if n, ok := kv[i+1].(*yaml.Node); ok {
			v = *n
		} else if err := v.Encode(kv[i+1]); err != nil {
			continue
		}
		m.Content = append(m.Content, &k, &v)
	}
	return m
}

// bytes renders the whole file.
func (o *output) bytes(header []string) []byte {
	var b strings.Builder
	for _, h := range header {
		writeComment(&b, 0, h)
	}
	for _, name := range sectionOrder {
		s := o.sections[name]
		if s == nil || (len(s.items) == 0 && len(s.head) == 0) {
			continue
		}
		b.WriteString("\n")
		for _, h := range s.head {
			writeComment(&b, 0, h)
		}
		if len(s.items) == 0 {
			continue
		}
		off := !Known(name)
		writeKey(&b, 0, name, "", "", off)
		for _, it := range s.items {
			writeItem(&b, 2, it, off)
		}
	}
	return []byte(b.String())
}

func writeItem(b *strings.Builder, indent int, it *item, parentOff bool) {
	off := parentOff || it.off
	for _, h := range it.head {
		writeComment(b, indent, h)
	}
	note := it.note
	if it.off && !parentOff {
		note = strings.TrimSpace(note + "; not in this camgate yet")
		note = strings.TrimPrefix(note, "; ")
	}
	if it.value != "" || (it.kids == nil && it.list == nil) {
		writeKey(b, indent, it.key, it.value, note, off)
		return
	}
	writeKey(b, indent, it.key, "", note, off)
	for _, l := range it.list {
		line := "- " + l
		if off {
			line = "# " + line
		}
		line = strings.Repeat(" ", indent+2) + line
		b.WriteString(line + "\n")
	}
	for _, k := range it.kids {
		writeItem(b, indent+2, k, off)
	}
}

func writeKey(b *strings.Builder, indent int, key, value, note string, off bool) {
	line := render(key) + ":"
	if value != "" {
		line += " " + value
	}
	if off {
		line = "# " + line
	}
	line = strings.Repeat(" ", indent) + line
	if note != "" {
		line += "  # " + note
	}
	b.WriteString(line + "\n")
}

func writeComment(b *strings.Builder, indent int, text string) {
	if text == "" {
		b.WriteString("#\n")
		return
	}
	b.WriteString(strings.Repeat(" ", indent) + "# " + text + "\n")
}

// Known tells whether this camgate's configuration has the dotted key:
// "rtsp.address", "hls.address", "paths.record" (a key of a path entry)
// or "pathDefaults.record". A key this build lacks is written commented
// out, so the output always loads.
func Known(key string) bool {
	parts := strings.Split(key, ".")
	t := reflect.TypeFor[conf.Config]()
	if parts[0] == "paths" {
		if len(parts) == 1 {
			return true
		}
		t, parts = reflect.TypeFor[conf.PathConf](), parts[1:]
	}
	for _, p := range parts {
		f, ok := fieldByYAML(t, p)
		if !ok {
			return false
		}
		t = f.Type
	}
	return true
}

func fieldByYAML(t reflect.Type, name string) (reflect.StructField, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
