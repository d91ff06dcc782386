package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/configs"
	"github.com/camgate/camgate/internal/redact"
)

// Error is a configuration error located in a file.
type Error struct {
	File string // "embedded defaults", a path, or "environment"
	Line int    // 0 when unknown
	Key  string // dotted key such as "paths.cam1.source"; may be empty
	Msg  string

	// alt is the same problem told from another key (the other side of a
	// port clash): Load names it instead when only it was set by the
	// file or the environment.
	alt *Error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	// Msg may quote a value of the file (yaml.v3 does); secrets in it are
	// masked here, where every config error is rendered.
	b.WriteString(": " + redact.String(e.Msg))
	return b.String()
}

// Check is a validation added by a consumer of the configuration: a rule
// a subsystem owns (an MQTT topic level, a password hash format), so that
// loading refuses what that subsystem would. It returns an *Error with Key
// set; Load fills in the file and the line.
type Check func(*Config) error

// Load returns the effective configuration: embedded defaults, then file
// (when not empty), then environment overrides from environ (KEY=VALUE
// entries, as os.Environ returns), then Validate and the checks.
func Load(file string, environ []string, checks ...Check) (*Config, error) {
	var c Config
	if err := decodeInto(&c, configs.Default, "embedded defaults"); err != nil {
		return nil, err
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		// The file's paths merge with the default ones, key by key.
		if err := decodeInto(&c, b, file); err != nil {
			return nil, err
		}
	}
	fromEnv, err := applyEnv(&c, environ)
	if err != nil {
		return nil, err
	}
	err = c.Validate()
	for _, check := range checks {
		if err != nil {
			break
		}
		err = check(&c)
	}
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.File == "" {
			ce.locate(file, fromEnv)
		}
		return nil, err
	}
	if file != "" {
		c.fileKeys = keyLines(fileBytes(file))
	}
	c.envVars = fromEnv
	return &c, nil
}

// SetByFile tells whether the config file or an environment variable sets
// key (dotted, "uplink.healthInterval"), as opposed to the embedded
// defaults: what the fleet's desired state may not override.
func (c *Config) SetByFile(key string) bool {
	if _, ok := c.fileKeys[key]; ok {
		return true
	}
	return c.envVars["CAMGATE_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))]
}

// locate fills in where a validation error comes from. A value set by the
// environment is blamed on its variable, not on the file line it
// replaced; otherwise the line of the key in the file, or of its nearest
// enclosing key when the file leaves the key out (a missing key, a
// default).
func (e *Error) locate(file string, fromEnv map[string]bool) {
	cands := []Error{*e}
	if e.alt != nil {
		cands = append(cands, *e.alt)
	}
	e.alt = nil
	for _, c := range cands {
		// The variable may set an enclosing key: CAMGATE_AUTH_USERS for
		// auth.users[1].ips[0].
		for k := c.Key; k != ""; k = parentKey(k) {
			if env := "CAMGATE_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_")); fromEnv[env] {
				e.File, e.Key, e.Msg = "environment", env, c.Msg
				if k != c.Key {
					e.Msg = c.Key + ": " + c.Msg
				}
				return
			}
		}
	}
	e.File = file
	if e.File == "" {
		e.File = "embedded defaults"
	}
	lines := keyLines(fileBytes(file))
	for _, c := range cands {
		if l := lines[c.Key]; l > 0 {
			e.Line, e.Key, e.Msg = l, c.Key, c.Msg
			return
		}
	}
	for _, c := range cands {
		for k := parentKey(c.Key); k != ""; k = parentKey(k) {
			if l := lines[k]; l > 0 {
				e.Line, e.Key, e.Msg = l, c.Key, c.Msg
				return
			}
		}
	}
}

// parentKey is "a.b" for "a.b.c" and "a.b[2]", "" for "a".
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i <= 0 {
		return ""
	}
	return k[:i]
}

func fileBytes(file string) []byte {
	if file == "" {
		return configs.Default
	}
	b, _ := os.ReadFile(file)
	return b
}

var lineRe = regexp.MustCompile(`line (\d+): (.*)`)

// decodeInto decodes YAML b over c with unknown keys rejected.
func decodeInto(c *Config, b []byte, name string) error {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return yamlErr(name, nil, err)
	}
	keys := map[int]string{}
	indexKeys(&root, "", keys)
	var nulls []nullEdit
	findNulls(&root, reflect.ValueOf(c).Elem(), &nulls)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err != nil && !errors.Is(err, io.EOF) {
		return yamlErr(name, keys, err)
	}
	if err == nil {
		// A second document would be ignored without a word: the settings
		// in it would silently not apply.
		var next yaml.Node
		if err := dec.Decode(&next); err == nil {
			return &Error{File: name, Line: docLine(&next), Msg: "more than one YAML document: the file must hold one (remove the --- line)"}
		} else if !errors.Is(err, io.EOF) {
			return yamlErr(name, keys, err)
		}
	}
	for _, e := range nulls {
		e.apply()
	}
	return nil
}

// nullEdit is what a null value on a map means. yaml.v3 alone would keep
// an entry set to null and empty a whole map set to null; on top of the
// defaults the file means otherwise:
//   - `paths: {demo: null}` removes the entry demo. Naming an entry the
//     defaults do not have removes nothing and is no error, so a file stays
//     valid when a release drops a default entry.
//   - `paths:` left null (every entry commented out) adds nothing and keeps
//     the defaults, as an empty `rtsp:` section keeps the rtsp defaults.
type nullEdit struct {
	field reflect.Value // the map field, settable
	keep  reflect.Value // its value before the decode, when the whole map was null
	drop  []string      // entries set to null
}

func (e nullEdit) apply() {
	if e.keep.IsValid() {
		e.field.Set(e.keep)
		return
	}
	for _, k := range e.drop {
		e.field.SetMapIndex(reflect.ValueOf(k).Convert(e.field.Type().Key()), reflect.Value{})
	}
}

// findNulls walks n alongside the struct v and records the null values
// that land on string-keyed maps.
func findNulls(n *yaml.Node, v reflect.Value, out *[]nullEdit) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			findNulls(c, v, out)
		}
		return
	}
	if n.Kind != yaml.MappingNode || v.Kind() != reflect.Struct {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f, ok := fieldByTag(v, n.Content[i].Value)
		if !ok {
			continue // an unknown key: the decoder reports it
		}
		val := n.Content[i+1]
		switch {
		case f.Kind() == reflect.Struct:
			findNulls(val, f, out)
		case f.Kind() == reflect.Map && f.Type().Key().Kind() == reflect.String:
			if isNull(val) {
				*out = append(*out, nullEdit{field: f, keep: reflect.ValueOf(f.Interface())})
				continue
			}
			if val.Kind != yaml.MappingNode {
				continue
			}
			e := nullEdit{field: f}
			for j := 0; j+1 < len(val.Content); j += 2 {
				if isNull(val.Content[j+1]) {
					e.drop = append(e.drop, val.Content[j].Value)
				}
			}
			if len(e.drop) > 0 {
				*out = append(*out, e)
			}
		}
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// fieldByTag returns the field of struct v whose yaml name is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	if name == "" {
		return reflect.Value{}, false // an empty key names no field
	}
	for i := 0; i < t.NumField(); i++ {
		if !t.Field(i).IsExported() {
			continue
		}
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// yamlErr converts yaml.v3 errors ("line 3: field x not found in type
// conf.RTSP") into Errors naming file, line and key.
func yamlErr(name string, keys map[int]string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []error
	for _, m := range msgs {
		e := &Error{File: name, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := lineRe.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Msg = sm[2]
			e.Key = keys[e.Line]
			if f := unknownField.FindStringSubmatch(e.Msg); f != nil {
				e.Msg = "unknown key"
				if e.Key == "" {
					e.Key = f[1]
				}
			}
			e.Msg = strings.ReplaceAll(e.Msg, "conf.", "")
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}

var unknownField = regexp.MustCompile(`^field (\S+) not found in type`)

// indexKeys records, for every line holding a mapping key or a sequence item,
// its dotted key path.
func indexKeys(n *yaml.Node, prefix string, out map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if _, ok := out[k.Line]; !ok || v.Line != k.Line || v.Kind == yaml.ScalarNode {
				out[k.Line] = p
			}
			indexKeys(v, p, out)
			if v.Kind == yaml.ScalarNode {
				out[v.Line] = p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := prefix + "[" + strconv.Itoa(i) + "]"
			if _, ok := out[c.Line]; !ok {
				out[c.Line] = p
			}
			indexKeys(c, p, out)
		}
	}
}

// docLine is the line a document's content starts on.
func docLine(n *yaml.Node) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return n.Content[0].Line
	}
	return n.Line
}

// keyLines maps every dotted key and list item of a YAML document
// ("auth.users[1].ips[0]") to the line it is on.
func keyLines(b []byte) map[string]int {
	out := map[string]int{}
	var root yaml.Node
	if len(b) == 0 || yaml.Unmarshal(b, &root) != nil {
		return out
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if prefix != "" {
					p = prefix + "." + p
				}
				if _, ok := out[p]; !ok {
					out[p] = n.Content[i].Line
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := prefix + "[" + strconv.Itoa(i) + "]"
				if _, ok := out[p]; !ok {
					out[p] = c.Line
				}
				walk(c, p)
			}
		}
	}
	walk(&root, "")
	return out
}

// applyEnv applies CAMGATE_<SECTION>_<KEY>[_<SUBKEY>] overrides. Values are
// YAML scalars or flow collections ("[tcp]", "{ca: x}").
// applyEnv sets the fields named by CAMGATE_* variables and returns the
// (upper-case) names it applied.
func applyEnv(c *Config, environ []string) (map[string]bool, error) {
	fields := map[string]reflect.Value{}
	collectEnvFields(reflect.ValueOf(c).Elem(), "CAMGATE", fields)
	var names []string
	vals := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "CAMGATE_") {
			continue
		}
		names = append(names, k)
		vals[k] = v
	}
	sort.Strings(names)
	applied := map[string]bool{}
	sections := map[string]bool{}
	for name := range fields {
		sec, _, _ := strings.Cut(strings.TrimPrefix(name, "CAMGATE_"), "_")
		sections[sec] = true
	}
	for _, k := range names {
		f, ok := fields[strings.ToUpper(k)]
		if !ok {
			// CAMGATE_<SECTION>_... with a real section is a typo worth
			// stopping for; other CAMGATE_* names belong to scripts and
			// tools around the agent.
			sec, _, _ := strings.Cut(strings.TrimPrefix(strings.ToUpper(k), "CAMGATE_"), "_")
			if sections[sec] {
				return nil, &Error{File: "environment", Key: k, Msg: "unknown setting"}
			}
			continue
		}
		if err := yaml.Unmarshal([]byte(vals[k]), f.Addr().Interface()); err != nil {
			return nil, &Error{File: "environment", Key: k, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		applied[strings.ToUpper(k)] = true
	}
	return applied, nil
}

func collectEnvFields(v reflect.Value, prefix string, out map[string]reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		// Paths are maps configured in files; sections and nested structs recurse.
		if sf.Type.Kind() == reflect.Struct && sf.Type.NumField() > 0 && !isLeaf(sf.Type) {
			collectEnvFields(fv, name, out)
			continue
		}
		if sf.Type.Kind() == reflect.Map {
			continue
		}
		out[name] = fv
	}
}

func isLeaf(t reflect.Type) bool {
	_, ok := reflect.New(t).Interface().(yaml.Unmarshaler)
	return ok
}

// Marshal returns the configuration as YAML with every secret redacted.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return b.Bytes(), nil
}
