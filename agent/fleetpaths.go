package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/internal/redact"
)

// fleetPathKeys are the path keys the fleet may set: over MQTT
// (paths.add, paths.update, paths.set, desired state) and on the local
// API. Every key of conf.PathConf is either here or in
// fleetRefusedPathKeys; a test fails when a new key is in neither, so
// that adding one is a decision.
var fleetPathKeys = []string{
	"source", "sourceOnDemand", "sourceOnDemandStartTimeout", "sourceOnDemandCloseAfter",
	"rtspTransport", "readTimeout", "maxReaders",
}

// fleetRefusedPathKeys are path keys only the config file may set: they
// start programs on the box (MediaMTX's runOn* hooks), so whoever can
// write to the broker could run commands as the agent's user. Any other
// key starting with "runOn" is refused as well.
var fleetRefusedPathKeys = []string{
	"runOnInit", "runOnInitRestart", "runOnDemand", "runOnDemandRestart",
	"runOnDemandStartTimeout", "runOnDemandCloseAfter", "runOnUnDemand",
	"runOnReady", "runOnReadyRestart", "runOnNotReady", "runOnRead",
	"runOnReadRestart", "runOnUnread", "runOnRecordSegmentCreate",
	"runOnRecordSegmentComplete",
}

// decodeFleetPath decodes one path entry sent by the fleet: a JSON object
// with only fleetPathKeys, decoded strictly and validated. The error is
// redacted (a source URL may be in it).
func decodeFleetPath(raw json.RawMessage) (conf.PathConf, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return conf.PathConf{}, errors.New("not a JSON object")
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if slices.Contains(fleetPathKeys, k) {
			continue
		}
		if slices.Contains(fleetRefusedPathKeys, k) || strings.HasPrefix(k, "runOn") {
			return conf.PathConf{}, fmt.Errorf("%s: it runs a program on the box, only the config file may set it", k)
		}
		return conf.PathConf{}, fmt.Errorf("%s: not a path key the fleet may set (%s)", k, strings.Join(fleetPathKeys, ", "))
	}
	var pc conf.PathConf
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pc); err != nil {
		return conf.PathConf{}, errors.New(redact.Error(err))
	}
	if err := pc.Validate(); err != nil {
		return conf.PathConf{}, errors.New(redact.Error(err))
	}
	return pc, nil
}
