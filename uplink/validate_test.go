package uplink_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/camgate/camgate/uplink"
)

func TestValidateAgentIDAndPrefix(t *testing.T) {
	for _, id := range []string{"cg-3f9a1c2b7d44", "gate 7", "hall.2_b", strings.Repeat("a", uplink.MaxAgentIDLen), "kamera-ü"} {
		if err := uplink.ValidateAgentID(id); err != nil {
			t.Errorf("id %q refused: %v", id, err)
		}
	}
	for _, id := range []string{"", "all", "a/b", "a+b", "a#", "a\x00b", "a\nb", "a\xffb", strings.Repeat("a", uplink.MaxAgentIDLen+1)} {
		if err := uplink.ValidateAgentID(id); !errors.Is(err, uplink.ErrBadTopic) {
			t.Errorf("id %q: %v", id, err)
		}
		if _, err := uplink.NewTopics("camgate", id); err == nil {
			t.Errorf("NewTopics took id %q", id)
		}
	}
	for _, p := range []string{"camgate", "site/3/camgate", "a b"} {
		if err := uplink.ValidateTopicPrefix(p); err != nil {
			t.Errorf("prefix %q refused: %v", p, err)
		}
	}
	for _, p := range []string{"", "a/+", "#", "/a", "a/", "$SYS", "a\x00", "a\xff"} {
		if err := uplink.ValidateTopicPrefix(p); !errors.Is(err, uplink.ErrBadTopic) {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
}

func TestCheckBroker(t *testing.T) {
	for broker, secure := range map[string]bool{"tcp://b:1883": false, "ssl://b:8883": true, "wss://b/mqtt": true, "mqtt://u:p@b": false} {
		if got, err := uplink.CheckBroker(broker); err != nil || got != secure {
			t.Errorf("%s: %v %v", broker, got, err)
		}
	}
	for _, broker := range []string{"http://b", "tcp://", "tcp://b:99999", "tcp://b:0", "tcp://u:s3cret@b:70000", ":"} {
		_, err := uplink.CheckBroker(broker)
		if !errors.Is(err, uplink.ErrBadBroker) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", broker, err)
		}
	}
}
