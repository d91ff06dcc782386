package log

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A component that forgets to redact still does not leak: the writer
// masks each line, and JSON lines stay valid.
func TestLinesAreRedacted(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		var out bytes.Buffer
		l, closer, err := New(Options{Format: format, Stderr: &out})
		if err != nil {
			t.Fatal(err)
		}
		l.Warn().Str("source", `rtsp://admin:p a/s"<s@10.0.0.5/x`).
			Err(errors.New(`describe "rtsp://cam/x?user=admin&password=s3cr3t": 401`)).
			Str("other", "mail admin@example.com").Msg("source failed")
		_ = closer.Close()
		got := out.String()
		for _, secret := range []string{"a/s", "s3cr3t"} {
			if strings.Contains(got, secret) {
				t.Errorf("%s: %q leaked: %s", format, secret, got)
			}
		}
		if !strings.Contains(got, "admin@example.com") || !strings.Contains(got, "10.0.0.5/x") || !strings.Contains(got, "401") {
			t.Errorf("%s: redacted too much: %s", format, got)
		}
		if format == "json" && !json.Valid(bytes.TrimSpace(out.Bytes())) {
			t.Errorf("invalid JSON line: %s", got)
		}
	}
}
