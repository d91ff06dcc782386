package conf

import "testing"

// TestSetByFileAndLabels: labels load as strings (a YAML number too);
// SetByFile tells the file's and the environment's keys from defaults.
func TestSetByFileAndLabels(t *testing.T) {
	file := writeFile(t, "agent:\n  labels: {site: plant-3, line: 2}\nuplink:\n  healthInterval: 10s\n")
	c, err := Load(file, []string{"CAMGATE_RTSP_ADDRESS=:9554"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.Labels["site"] != "plant-3" || c.Agent.Labels["line"] != "2" {
		t.Fatalf("labels %v", c.Agent.Labels)
	}
	for key, want := range map[string]bool{
		"uplink.healthInterval": true, "agent.labels.site": true, "rtsp.address": true,
		"uplink.broker": false, "update.trialTimeout": false,
	} {
		if got := c.SetByFile(key); got != want {
			t.Errorf("SetByFile(%q) = %v, want %v", key, got, want)
		}
	}
	d, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.SetByFile("uplink.healthInterval") || len(d.Agent.Labels) != 0 {
		t.Fatalf("embedded defaults: set %v, labels %v", d.SetByFile("uplink.healthInterval"), d.Agent.Labels)
	}
}
