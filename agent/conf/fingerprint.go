package conf

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Fingerprint is the SHA-256 of a camera's TLS leaf certificate (DER), as
// MediaMTX's sourceFingerprint: 64 hex digits. Upper case and colon
// separators (as openssl x509 -fingerprint -sha256 prints it) are
// accepted; the value is kept in lower case without separators, the form
// the RTSP source compares and its errors print.
type Fingerprint string

// ParseFingerprint normalises a fingerprint; "" stays "".
func ParseFingerprint(s string) (Fingerprint, error) {
	if s == "" {
		return "", nil
	}
	h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return "", fmt.Errorf("want the hex SHA-256 of the camera's certificate (64 hex digits, colons allowed), got %d characters", len(s))
	}
	return Fingerprint(h), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (f *Fingerprint) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: sourceFingerprint: want a string of 64 hex digits", n.Line)
	}
	v, err := ParseFingerprint(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*f = v
	return nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Fingerprint) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("sourceFingerprint: want a string of 64 hex digits")
	}
	v, err := ParseFingerprint(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}
