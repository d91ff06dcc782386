package uplink_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// TestLabelsAndDesiredState: the birth, SetLabels and the last will carry
// the labels; the retained desired document is handed over after each
// connect, the newest only; PublishReported leaves a retained report.
func TestLabelsAndDesiredState(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-test")
	if err := b.Server.Publish("camgate/cg-test/state/desired", []byte(`{"version":1}`), true, 1); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, proxy.URL(), nil, func(o *uplink.Options) { o.Labels = map[string]string{"site": "a"} })
	runClient(t, c)
	if st := waitStatus(t, ch, uplink.StateOnline, ""); !maps.Equal(st.Labels, map[string]string{"site": "a"}) {
		t.Fatalf("birth labels %v", st.Labels)
	}
	got := func(want string) {
		t.Helper()
		select {
		case p := <-c.Desired():
			if string(p) != want {
				t.Fatalf("desired %s, want %s", p, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no desired document %s within 10s", want)
		}
	}
	got(`{"version":1}`)

	// Two documents before the agent takes one: only the newest waits.
	for _, d := range []string{`{"version":2}`, `{"version":3}`} {
		if err := b.Server.Publish("camgate/cg-test/state/desired", []byte(d), true, 1); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for newest := false; !newest; {
		select {
		case p := <-c.Desired():
			newest = string(p) == `{"version":3}`
		case <-deadline:
			t.Fatal("version 3 never handed over")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SetLabels(ctx, map[string]string{"site": "b"}); err != nil {
		t.Fatal(err)
	}
	// A birth of an earlier session (one whose start was slow and was
	// retried) may still be queued: the republished status is the first
	// with the new labels, and nothing after it has the old ones.
	waitLabelled(t, ch, "b")
	if err := c.PublishReported(ctx, []byte(`{"version":3,"ok":true,"errors":[]}`)); err != nil {
		t.Fatal(err)
	}
	if p, ok := b.Retained("camgate/cg-test/state/reported"); !ok || string(p) != `{"version":3,"ok":true,"errors":[]}` {
		t.Fatalf("retained report %q %v", p, ok)
	}

	// The will has the labels the client connected with; after the
	// reconnect the birth has the new ones, and the retained document
	// comes again.
	proxy.Cut()
	if st := waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost); st.Labels["site"] != "a" {
		t.Fatalf("will labels %v", st.Labels)
	}
	proxy.Restore()
	if st := waitStatus(t, ch, uplink.StateOnline, ""); st.Labels["site"] != "b" {
		t.Fatalf("birth after reconnect %v", st.Labels)
	}
	got(`{"version":3}`)

	// An emptied retained topic is not handed over.
	if err := b.Server.Publish("camgate/cg-test/state/desired", nil, true, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-c.Desired():
		t.Fatalf("cleared document handed over: %q", p)
	case <-time.After(300 * time.Millisecond):
	}
	c2 := newClient(t, b.URL(), nil, nil)
	if err := c2.PublishReported(ctx, []byte(`{}`)); !errors.Is(err, uplink.ErrNotConnected) {
		t.Fatalf("PublishReported before connecting: %v", err)
	}
}

// waitLabelled reads ch until an online status labelled site=want comes.
func waitLabelled(t *testing.T, ch <-chan fleet.Msg, want string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-ch:
			var st uplink.Status
			if m.Kind != "status" || json.Unmarshal(m.Payload, &st) != nil || st.State != uplink.StateOnline {
				continue
			}
			if st.Labels["site"] == want {
				return
			}
		case <-deadline:
			t.Fatalf("no online status labelled site=%s within 15s", want)
		}
	}
}

func TestValidateLabel(t *testing.T) {
	for _, ok := range [][2]string{{"site", "plant-3"}, {"a.b/c_d", "X-1.2/3_4"}} {
		if err := uplink.ValidateLabel(ok[0], ok[1]); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	long := string(make([]byte, 64))
	for _, bad := range [][2]string{{"", "x"}, {"x", ""}, {"a b", "x"}, {"x", "a,b"}, {"x", "a=b"}, {"x", "a!"}, {long, "x"}, {"é", "x"}} {
		if err := uplink.ValidateLabel(bad[0], bad[1]); !errors.Is(err, uplink.ErrBadLabel) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	var st uplink.Status
	if err := json.Unmarshal([]byte(`{"state":"online","labels":{"site":"a"}}`), &st); err != nil || st.Labels["site"] != "a" {
		t.Fatal(st, err)
	}
}
