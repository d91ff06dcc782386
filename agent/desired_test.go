package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// desiredConfig writes a config for agent cg-ds with labels site=plant-3,
// the uplink on broker, the API on a free port and the given extra uplink
// keys; it returns the file and the API address.
func desiredConfig(t *testing.T, dataDir, broker, uplinkExtra string) (string, string) {
	t.Helper()
	apiAddr := freePort(t)
	body := fmt.Sprintf(`agent:
  id: cg-ds
  dataDir: %s
  logLevel: debug
  labels: {site: plant-3}
rtsp:
  address: %s
  transports: [tcp]
webrtc:
  address: ""
api:
  address: %s
uplink:
  broker: %s
%s`, dataDir, freePort(t), apiAddr, broker, uplinkExtra)
	file := filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, apiAddr
}

// retained polls the broker for the retained message on topic until ok
// accepts it.
func retained(t *testing.T, b *mqtttest.Broker, topic, what string, ok func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p, found := b.Retained(topic); found && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			p, _ := b.Retained(topic)
			t.Fatalf("no %s within 15s; retained on %s: %s", what, topic, p)
		}
		time.Sleep(20 * time.Millisecond) // polling the broker's retained store: no event to wait on
	}
}

func reportedVersion(t *testing.T, b *mqtttest.Broker, id string, version uint64) uplink.Reported {
	t.Helper()
	var r uplink.Reported
	retained(t, b, "camgate/"+id+"/state/reported", fmt.Sprintf("report of version %d", version), func(p []byte) bool {
		r = uplink.Reported{}
		return json.Unmarshal(p, &r) == nil && r.Version == version
	})
	return r
}

func statusLabels(t *testing.T, b *mqtttest.Broker, id string, want map[string]string) {
	t.Helper()
	retained(t, b, "camgate/"+id+"/status", fmt.Sprintf("status with labels %v", want), func(p []byte) bool {
		var st uplink.Status
		return json.Unmarshal(p, &st) == nil && st.State == uplink.StateOnline && maps.Equal(st.Labels, want)
	})
}

func putDesired(t *testing.T, b *mqtttest.Broker, id, doc string) {
	t.Helper()
	if err := b.Server.Publish("camgate/"+id+"/state/desired", []byte(doc), true, 1); err != nil {
		t.Fatal(err)
	}
}

func fleetPathNames(t *testing.T, a *Agent) []string {
	t.Helper()
	ps, err := a.store.FleetPaths()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(ps))
}

func errorKeys(r uplink.Reported) map[string]uplink.ErrorCode {
	out := map[string]uplink.ErrorCode{}
	for _, e := range r.Errors {
		out[e.Key] = e.Code
	}
	return out
}

// TestDesiredState: a document written while the agent is away is applied
// when it connects; a change is applied; a stale version is ignored;
// entries that clash with the config file or that the fleet may not set
// are reported and the rest applied; and what was applied is there after
// a restart without the broker.
func TestDesiredState(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	dir := t.TempDir()
	file, _ := desiredConfig(t, dir, proxy.URL(), "")

	// Written while the agent is offline.
	putDesired(t, b, "cg-ds", `{"version":1,"paths":{"cam9":{"source":"demo"}},"labels":{"line":"2"},"config":{"uplink":{"healthInterval":"2s"}}}`)
	a, stop := startAgent(t, file, &testlog.Buffer{})
	r := reportedVersion(t, b, "cg-ds", 1)
	if !r.OK || len(r.Errors) != 0 || r.AppliedAt.IsZero() {
		t.Fatalf("report of v1: %+v", r)
	}
	statusLabels(t, b, "cg-ds", map[string]string{"site": "plant-3", "line": "2"})
	if got := fleetPathNames(t, a); !slices.Equal(got, []string{"cam9"}) {
		t.Fatalf("fleet paths after v1: %v", got)
	}
	if _, ok := a.paths.Path("cam9"); !ok {
		t.Fatal("cam9 not in the path manager")
	}
	if d := a.link.healthInterval(); d != 2*time.Second {
		t.Fatalf("health interval %s, want 2s from the desired state", d)
	}

	// A change.
	putDesired(t, b, "cg-ds", `{"version":2,"paths":{"cam10":{"source":"publisher"}},"labels":{"line":"3"}}`)
	r = reportedVersion(t, b, "cg-ds", 2)
	if !r.OK {
		t.Fatalf("report of v2: %+v", r)
	}
	statusLabels(t, b, "cg-ds", map[string]string{"site": "plant-3", "line": "3"})
	if got := fleetPathNames(t, a); !slices.Equal(got, []string{"cam10"}) {
		t.Fatalf("fleet paths after v2: %v", got)
	}
	if _, ok := a.paths.Path("cam9"); ok {
		t.Fatal("cam9 still in the path manager after v2")
	}
	if d := a.link.healthInterval(); d != 30*time.Second {
		t.Fatalf("health interval %s after the config member went away, want the file's 30s", d)
	}

	// Stale: an older version is ignored (the report still says 2).
	putDesired(t, b, "cg-ds", `{"version":1,"paths":{}}`)
	// The same version with other content is not applied either.
	putDesired(t, b, "cg-ds", `{"version":2,"paths":{}}`)
	retained(t, b, "camgate/cg-ds/state/reported", "conflict report for a reused version", func(p []byte) bool {
		var r uplink.Reported
		return json.Unmarshal(p, &r) == nil && r.Version == 2 && errorKeys(r)["version"] == uplink.CodeConflict
	})
	if got := fleetPathNames(t, a); !slices.Equal(got, []string{"cam10"}) {
		t.Fatalf("fleet paths after stale documents: %v", got)
	}

	// Clashes and refused keys are reported, the rest is applied; a
	// refused entry keeps the path it names.
	putDesired(t, b, "cg-ds", `{"version":5,
		"paths":{"demo":{"source":"publisher"},"cam10":{"source":"publisher","runOnInit":"sh -c reboot"},"cam11":{"source":"demo"},"bad name":{"source":"demo"},"cam12":{"source":"ftp://x"}},
		"labels":{"site":"plant-9","line":"4","bad":"a b"},
		"config":{"uplink":{"healthInterval":"3s","broker":"tcp://evil:1883"},"auth":{"users":[]}},
		"extra":1}`)
	r = reportedVersion(t, b, "cg-ds", 5)
	want := map[string]uplink.ErrorCode{
		"paths.demo": uplink.CodeReadOnly, "paths.cam10": uplink.CodeBadRequest, "paths.bad name": uplink.CodeBadRequest,
		"paths.cam12": uplink.CodeBadRequest, "labels.site": uplink.CodeReadOnly, "labels.bad": uplink.CodeBadRequest,
		"config.uplink.broker": uplink.CodeBadRequest, "config.auth": uplink.CodeBadRequest, "extra": uplink.CodeBadRequest,
	}
	if r.OK || !reflect.DeepEqual(errorKeys(r), want) {
		t.Fatalf("report of v5: ok %v errors %v\nwant %v", r.OK, errorKeys(r), want)
	}
	for _, e := range r.Errors {
		if strings.Contains(e.Message, "reboot") {
			t.Fatalf("report repeats the refused command: %+v", e)
		}
	}
	if got := fleetPathNames(t, a); !slices.Equal(got, []string{"cam10", "cam11"}) {
		t.Fatalf("fleet paths after v5: %v", got)
	}
	pc, _ := a.store.FleetPath("cam10")
	if string(pc.Source) != "publisher" {
		t.Fatalf("cam10 changed by a refused entry: %+v", pc)
	}
	statusLabels(t, b, "cg-ds", map[string]string{"site": "plant-3", "line": "4"})
	if d := a.link.healthInterval(); d != 3*time.Second {
		t.Fatalf("health interval %s, want 3s", d)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Restart with the broker out of reach: the applied state is there.
	proxy.Cut()
	a2, stop2 := startAgent(t, file, &testlog.Buffer{})
	if got := fleetPathNames(t, a2); !slices.Equal(got, []string{"cam10", "cam11"}) {
		t.Fatalf("fleet paths after restart: %v", got)
	}
	if _, ok := a2.paths.Path("cam11"); !ok {
		t.Fatal("cam11 not restored into the path manager")
	}
	if got := a2.desired.labels(); !maps.Equal(got, map[string]string{"site": "plant-3", "line": "4"}) {
		t.Fatalf("labels after restart: %v", got)
	}
	if d := a2.link.healthInterval(); d != 3*time.Second || a2.desired.version() != 5 {
		t.Fatalf("after restart: interval %s version %d", d, a2.desired.version())
	}
	// Back online: the same document again is a no-op; the status has
	// the labels from the start.
	proxy.Restore()
	statusLabels(t, b, "cg-ds", map[string]string{"site": "plant-3", "line": "4"})
	reportedVersion(t, b, "cg-ds", 5)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}

// TestDesiredSettingSetByFile: uplink.healthInterval set in the config
// file cannot be changed by the fleet.
func TestDesiredSettingSetByFile(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	file, _ := desiredConfig(t, t.TempDir(), b.URL(), "  healthInterval: 1s\n")
	a, _ := startAgent(t, file, &testlog.Buffer{})
	putDesired(t, b, "cg-ds", `{"version":1,"config":{"uplink":{"healthInterval":"5s"}},"labels":{"site":"plant-3"}}`)
	r := reportedVersion(t, b, "cg-ds", 1)
	if r.OK || !reflect.DeepEqual(errorKeys(r), map[string]uplink.ErrorCode{"config.uplink.healthInterval": uplink.CodeReadOnly}) {
		t.Fatalf("report: %+v", r)
	}
	if d := a.link.healthInterval(); d != time.Second {
		t.Fatalf("health interval %s, want the file's 1s", d)
	}
	// The same value as the file is no clash.
	putDesired(t, b, "cg-ds", `{"version":2,"config":{"uplink":{"healthInterval":"1s"}}}`)
	if r := reportedVersion(t, b, "cg-ds", 2); !r.OK {
		t.Fatalf("report of v2: %+v", r)
	}
}

// TestDesiredRejectsBrokenDocuments: documents that cannot be read are
// reported with version 0 and change nothing.
func TestDesiredRejectsBrokenDocuments(t *testing.T) {
	cfg, err := conf.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t, store.Options{})
	log := zerolog.Nop()
	d := newDispatcher(&dispatcher{log: log, store: st, paths: newFakePaths(), cfg: cfg, events: newEventSink(log, false)})
	ds, err := newDesiredState(cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"not json":      `{`,
		"no version":    `{"paths":{}}`,
		"version 0":     `{"version":0}`,
		"float version": `{"version":1.5}`,
		"array":         `[1]`,
		"too large":     `{"version":1,"x":"` + strings.Repeat("a", uplink.MaxDesiredBytes) + `"}`,
	} {
		rep, _ := ds.apply([]byte(doc), d)
		var r uplink.Reported
		if err := json.Unmarshal(rep, &r); err != nil || r.OK || r.Version != 0 || len(r.Errors) != 1 {
			t.Errorf("%s: report %s", name, rep)
		}
		if ds.version() != 0 {
			t.Fatalf("%s: version %d applied", name, ds.version())
		}
	}
}

// TestFleetPathKeysClassified: every key of conf.PathConf is either one
// the fleet may set or one it may not; a new key must be put in one list.
func TestFleetPathKeysClassified(t *testing.T) {
	typ := reflect.TypeOf(conf.PathConf{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		allowed := slices.Contains(fleetPathKeys, name)
		refused := slices.Contains(fleetRefusedPathKeys, name) || strings.HasPrefix(name, "runOn")
		if allowed == refused {
			t.Errorf("path key %q: put it in fleetPathKeys (the fleet may set it) or fleetRefusedPathKeys (only the config file may)", name)
		}
	}
	for _, k := range fleetPathKeys {
		if _, ok := typ.FieldByNameFunc(func(f string) bool {
			sf, _ := typ.FieldByName(f)
			n, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			return n == k
		}); !ok {
			t.Errorf("fleetPathKeys names %q, which conf.PathConf does not have", k)
		}
	}
	for _, raw := range []string{`{"source":"demo","runOnInit":"x"}`, `{"source":"demo","runOnSomethingNew":"x"}`, `{"source":"demo","nope":1}`} {
		if _, err := decodeFleetPath(json.RawMessage(raw), "conf"); err == nil {
			t.Errorf("decodeFleetPath accepted %s", raw)
		}
	}
	if pc, err := decodeFleetPath(json.RawMessage(`{"source":"rtsp://u:p@10.0.0.1/x","maxReaders":2}`), "conf"); err != nil || *pc.MaxReaders != 2 {
		t.Errorf("decodeFleetPath: %+v %v", pc, err)
	}
}
