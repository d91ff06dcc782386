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

// Load returns the effective configuration: embedded defaults, then file
// (when not empty), then environment overrides from environ (KEY=VALUE
// entries, as os.Environ returns), then Validate.
func Load(file string, environ []string) (*Config, error) {
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
	if err := c.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.File == "" {
			// A value set by the environment is blamed on its variable,
			// not on the file line it replaced.
			if env := "CAMGATE_" + strings.ToUpper(strings.ReplaceAll(ce.Key, ".", "_")); fromEnv[env] {
				ce.File, ce.Key = "environment", env
				return nil, err
			}
			ce.File = file
			if ce.File == "" {
				ce.File = "embedded defaults"
			}
			ce.Line = lineOfKey(fileBytes(file), ce.Key)
		}
		return nil, err
	}
	return &c, nil
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
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return yamlErr(name, keys, err)
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

// lineOfKey finds the line of a dotted key in a YAML document, 0 if absent.
func lineOfKey(b []byte, key string) int {
	if key == "" || len(b) == 0 {
		return 0
	}
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return 0
	}
	keys := map[int]string{}
	indexKeys(&root, "", keys)
	best := 0
	for line, k := range keys {
		if k == key && (best == 0 || line < best) {
			best = line
		}
	}
	return best
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
