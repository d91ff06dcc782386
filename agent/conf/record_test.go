package conf

import (
	"encoding/json"
	"testing"
	"time"
)

// The record keys load from pathDefaults and paths (MediaMTX spellings),
// from the environment, and as JSON (fleet commands) with sizes as
// numbers or strings.
func TestRecordKeys(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.PathDefaults
	if d.Record || d.RecordPath != "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f" || d.RecordSegmentDuration.D() != 10*time.Minute ||
		d.RecordPartDuration.D() != time.Second || d.RecordDeleteAfter.D() != 24*time.Hour || d.RecordMaxBytes != 0 || d.RecordMinFreeBytes != 0 {
		t.Fatalf("record defaults: %+v", d)
	}
	if c.Playback.Address != ":9996" || c.Playback.MaxConnections != 64 || c.Playback.MaxConnectionsPerIP != 16 {
		t.Fatalf("playback %+v", c.Playback)
	}
	p := writeFile(t, `pathDefaults:
  recordDeleteAfter: 72h
paths:
  cam:
    source: demo
    record: true
    recordPath: /srv/rec/%path/%s-%f
    recordMaxBytes: 20GiB
`)
	c, err = Load(p, []string{"CAMGATE_PATHDEFAULTS_RECORDMINFREEBYTES=2GiB", "CAMGATE_PLAYBACK_ADDRESS=127.0.0.1:19996",
		"CAMGATE_PLAYBACK_MAXCONNECTIONSPERIP=4"})
	if err != nil {
		t.Fatal(err)
	}
	cam := c.Paths["cam"]
	if cam.Record == nil || !*cam.Record || *cam.RecordPath != "/srv/rec/%path/%s-%f" || *cam.RecordMaxBytes != 20<<30 {
		t.Fatalf("cam: %+v", cam)
	}
	if c.PathDefaults.RecordDeleteAfter.D() != 72*time.Hour || c.PathDefaults.RecordMinFreeBytes != 2<<30 ||
		c.Playback.Address != "127.0.0.1:19996" || c.Playback.MaxConnectionsPerIP != 4 {
		t.Fatalf("defaults %+v, playback %+v", c.PathDefaults, c.Playback)
	}
	var pc PathConf
	if err := json.Unmarshal([]byte(`{"source":"demo","recordMaxBytes":"1GiB","recordMinFreeBytes":1048576}`), &pc); err != nil {
		t.Fatal(err)
	}
	if *pc.RecordMaxBytes != 1<<30 || *pc.RecordMinFreeBytes != 1<<20 {
		t.Fatalf("JSON sizes: %d %d", *pc.RecordMaxBytes, *pc.RecordMinFreeBytes)
	}
	if err := json.Unmarshal([]byte(`{"recordMaxBytes":"lots"}`), &pc); err == nil {
		t.Fatal("a size that is no size was taken")
	}
}
