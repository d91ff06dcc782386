package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	"rtspTransport", "readTimeout", "maxReaders", "sourceRetryMax", "sourceFingerprint",
	"record", "recordPath", "recordSegmentDuration", "recordPartDuration",
	"recordDeleteAfter", "recordMaxBytes", "recordMinFreeBytes",
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
// with only fleetPathKeys, decoded strictly and validated. key names the
// entry in error messages ("args.conf", "args.paths.cam9"; "" when the
// caller names it itself). The error is redacted (a source URL may be in
// it).
func decodeFleetPath(raw json.RawMessage, key string) (conf.PathConf, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return conf.PathConf{}, fmt.Errorf("%s: want a JSON object of path keys", subKey(key, ""))
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if slices.Contains(fleetPathKeys, k) {
			continue
		}
		if slices.Contains(fleetRefusedPathKeys, k) || strings.HasPrefix(k, "runOn") {
			return conf.PathConf{}, fmt.Errorf("%s: set in the config file only: it runs a program on the box", subKey(key, k))
		}
		return conf.PathConf{}, fmt.Errorf("%s: unknown key (known: %s)", subKey(key, k), strings.Join(fleetPathKeys, ", "))
	}
	var pc conf.PathConf
	if err := conf.DecodeJSON(raw, &pc, key); err != nil {
		return conf.PathConf{}, errors.New(redact.Error(err))
	}
	if err := pc.Validate(); err != nil {
		// Validate's messages start with the path key they are about.
		return conf.PathConf{}, errors.New(redact.String(subKey(key, err.Error())))
	}
	return pc, nil
}

// subKey is k under key, as the config file spells nested keys; key ""
// leaves k alone, k "" is key itself (or "conf").
func subKey(key, k string) string {
	switch {
	case k == "" && key == "":
		return "conf"
	case k == "":
		return key
	case key == "":
		return k
	}
	return key + "." + k
}
