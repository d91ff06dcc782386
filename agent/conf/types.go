package conf

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/camgate/camgate/internal/redact"
)

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: invalid duration: want a string such as 10s", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (use e.g. 500ms, 10s, 2m)", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: invalid duration %q: negative", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"10s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written as a number or with a unit
// (KiB, MiB, GiB, KB, MB, GB).
type ByteSize uint64

var byteUnits = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "64MiB", "1000", "2GB".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	orig := s
	mult := uint64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("size %q is too large (at most %d bytes)", orig, uint64(MaxByteSize))
	}
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (use e.g. 64MiB)", s)
	}
	if v > MaxByteSize/mult {
		return 0, fmt.Errorf("size %q is too large (at most %d bytes)", orig, uint64(MaxByteSize))
	}
	return ByteSize(v * mult), nil
}

// MaxByteSize is the largest size accepted: the consumers (the Go
// runtime's memory limit, the outbox bound) take an int64.
const MaxByteSize = math.MaxInt64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: invalid size: want e.g. 64MiB", n.Line)
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalJSON accepts a number of bytes or a string with a unit
// ("10GiB"), as fleet commands may send either.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	s := string(data)
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b ByteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b != 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b != 0 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return strconv.FormatUint(uint64(b), 10)
}

// Secret is a string that is never printed: YAML, JSON and String give Mask.
type Secret string

// Mask replaces secrets in printed configs.
const Mask = redact.Mask

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.redacted(), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.redacted())), nil }

func (s Secret) String() string { return s.redacted() }

func (s Secret) redacted() string {
	if s == "" {
		return ""
	}
	return Mask
}

// SecretURL is a URL that may carry credentials; printing redacts the password.
type SecretURL string

// MarshalYAML implements yaml.Marshaler.
func (u SecretURL) MarshalYAML() (any, error) { return redact.URL(string(u)), nil }

// MarshalJSON implements json.Marshaler.
func (u SecretURL) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(redact.URL(string(u)))), nil
}

func (u SecretURL) String() string { return redact.URL(string(u)) }

// Command is a command line (runOnInit, runOnDemand). It may hold a camera
// URL with its password: printing redacts URL passwords, as for sources.
type Command string

// MarshalYAML implements yaml.Marshaler.
func (c Command) MarshalYAML() (any, error) { return redact.String(string(c)), nil }

// MarshalJSON implements json.Marshaler.
func (c Command) MarshalJSON() ([]byte, error) { return json.Marshal(redact.String(string(c))) }

func (c Command) String() string { return redact.String(string(c)) }
