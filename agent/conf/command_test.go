package conf

import (
	"encoding/json"
	"strings"
	"testing"
)

// A command line may carry a camera password; printed configs redact it.
func TestCommandRedactedWhenPrinted(t *testing.T) {
	p := writeFile(t, "paths:\n  door:\n    source: publisher\n    runOnDemand: ffmpeg -rtsp_transport tcp -i rtsp://admin:hunter2@10.0.0.64/s -c copy -f rtsp rtsp://localhost:$RTSP_PORT/$MTX_PATH\n")
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := c.Marshal()
	j, _ := json.Marshal(c)
	for _, out := range []string{string(y), string(j)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "rtsp://admin:***@10.0.0.64/s") {
			t.Fatalf("printed config:\n%s", out)
		}
	}
	if got := string(c.Paths["door"].RunOnDemand); !strings.Contains(got, "hunter2") {
		t.Fatalf("the loaded command lost its password: %q", got)
	}
}
