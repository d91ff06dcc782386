package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// TestDamagedStateFileRaisesEvent: an agent whose camgate.db is cut short
// starts, serves, and tells the fleet with a store.recovered event what was
// moved where; its seq continues past every seq of the damaged file.
func TestDamagedStateFileRaisesEvent(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := st.AppendOutbox(uplink.KindEvents, func(uint64) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 10<<10); err != nil { // bbolt alone would fault on it
		t.Fatal(err)
	}

	file, rtsp, _ := fleetConfig(t, dir, b.URL(), "")
	startAgent(t, file, &testlog.Buffer{})
	m := col.until(t, "store.recovered", isEvent(uplink.EventStoreRecovered))
	var ev struct {
		Detail store.Recovery `json:"detail"`
	}
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	r := ev.Detail
	if !strings.HasPrefix(r.MovedTo, path+".corrupt-") || r.Damage == "" || r.SeqSkipped == 0 || m.Seq <= r.Seq || r.Seq < 3 {
		t.Fatalf("store.recovered at seq %d: %+v", m.Seq, r)
	}
	if _, err := os.Stat(r.MovedTo); err != nil {
		t.Fatal(err)
	}
	rd, err := testcam.Read(t, "rtsp://"+rtsp+"/demo", false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	rd.Close()
}
