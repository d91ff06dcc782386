package conf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// JSONError is a problem of a JSON document (command arguments, a path
// posted to the API), named by its key as camgate spells it
// ("args.conf.maxReaders"), never by Go's type names.
type JSONError struct {
	Key string // dotted key; "" for the document as a whole
	Msg string
}

func (e *JSONError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// DecodeJSON decodes data into v (a pointer) strictly: an unknown key, a
// wrong type or a bad value is a *JSONError naming the key under prefix
// (the document's own name, e.g. "args"). A key whose field is tagged
// origin:"file" (the runOn* path keys, which start commands on the box) is
// refused: those come from the config file only.
func DecodeJSON(data []byte, v any, prefix string) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return errors.New("decode json: want a pointer")
	}
	if err := checkJSON(data, t.Elem(), prefix); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// checkJSON walks raw alongside the type t it is decoded into.
func checkJSON(raw []byte, t reflect.Type, key string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// A value with a decoder of its own (a duration): its error names
		// no key, so it is run here, where the key is known.
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			return &JSONError{Key: key, Msg: err.Error()}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, err := object(raw, key)
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(obj) {
			f, ok := jsonField(t, k)
			if !ok {
				return &JSONError{Key: joinKey(key, k), Msg: "unknown key (known: " + strings.Join(jsonNames(t), ", ") + ")"}
			}
			if f.Tag.Get("origin") == "file" {
				return &JSONError{Key: joinKey(key, k), Msg: "set in the config file only: a fleet command, the desired state or the API cannot set it"}
			}
			if err := checkJSON(obj[k], f.Type, joinKey(key, k)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, err := object(raw, key)
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(obj) {
			if err := checkJSON(obj[k], t.Elem(), joinKey(key, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // []byte is a base64 string
		}
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) != nil {
			return &JSONError{Key: key, Msg: "want a list, got " + jsonKind(raw)}
		}
		for i, e := range arr {
			if err := checkJSON(e, t.Elem(), key+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func object(raw []byte, key string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return nil, &JSONError{Key: key, Msg: "want an object, got " + jsonKind(raw)}
	}
	return obj, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// jsonField finds the field encoding/json would decode key into: the
// exact name first, then a case-insensitive match, as encoding/json does.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		if name == key {
			return f, true
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = &f
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch tag {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return tag
}

func jsonNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if n := jsonName(f); n != "" && f.Tag.Get("origin") != "file" {
			out = append(out, n)
		}
	}
	return out
}

// jsonKind names the JSON type of raw for messages.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonError rewords encoding/json's errors, which name Go types ("cannot
// unmarshal string into Go struct field pathArgs.conf.maxReaders of type
// int").
func jsonError(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		key := prefix
		if te.Field != "" {
			key = joinKey(prefix, te.Field)
		}
		return &JSONError{Key: key, Msg: fmt.Sprintf("want %s, got %s", goKind(te.Type), article(te.Value))}
	case errors.As(err, &se):
		return &JSONError{Key: prefix, Msg: fmt.Sprintf("not valid JSON (at byte %d)", se.Offset)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &JSONError{Key: prefix, Msg: "not valid JSON (it ends too soon)"}
	}
	var je *JSONError
	if errors.As(err, &je) {
		return je
	}
	return &JSONError{Key: prefix, Msg: strings.TrimPrefix(err.Error(), "json: ")}
}

// article names a JSON value type as encoding/json reports it ("number
// -1" for a number that does not fit).
func article(v string) string {
	switch v {
	case "object":
		return "an object"
	case "array":
		return "a list"
	case "bool":
		return "true or false"
	case "string", "number":
		return "a " + v
	}
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return "the number " + n
	}
	return v
}

func goKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}
