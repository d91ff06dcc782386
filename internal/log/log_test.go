package log

import (
	"bytes"
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
