package log

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Durations are logged with their unit, in both formats.
func TestDurationsHaveUnits(t *testing.T) {
	for _, format := range []string{"console", "json"} {
		var b bytes.Buffer
		l, c, err := New(Options{Format: format, Stderr: &b})
		if err != nil {
			t.Fatal(err)
		}
		l.Info().Dur("retryIn", 950*time.Millisecond).Dur("gap", 2*time.Minute).Msg("x")
		_ = c.Close()
		out := b.String()
		for _, want := range []string{"950ms", "2m0s"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: %q lacks %q", format, out, want)
			}
		}
		if strings.Contains(out, "950.") || strings.Contains(out, "120000") {
			t.Errorf("%s: bare number in %q", format, out)
		}
	}
}

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
