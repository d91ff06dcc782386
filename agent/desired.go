package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
)

// Desired state ("shadow"): the fleet writes a retained document on
// P/ID/state/desired, the agent applies it on every connect and on every
// change and answers with a retained P/ID/state/reported.
//
//	{"version": 7,
//	 "paths":  {"cam1": {"source": "rtsp://..."}},   the whole fleet-managed set, as paths.set
//	 "labels": {"line": "2"},                        added to agent.labels
//	 "config": {"uplink": {"healthInterval": "60s"}}} the settings the fleet may change
//
// A member left out is not managed by the document: no paths member
// leaves the fleet-managed paths as they are (paths.* commands manage
// them); no labels or config member means none from the fleet. Entries
// that cannot be applied are reported as errors and the rest is applied:
// a path name the config file owns, a key the fleet may not set (runOn*,
// anything outside fleetPathKeys), a label or setting the config file
// sets to another value, a bad value. A refused path entry keeps the
// fleet path of that name as it was, so a typo does not take a camera
// away.
//
// Versions only go up: a document with a lower version than the one
// applied is ignored, the same version again is a no-op (the broker sends
// the retained document after every connect). What the document set
// survives a restart without network: the paths are in the store's paths
// bucket, the version, labels and settings in its state bucket.

// desiredSettings lists, for messages, the settings the fleet may change.
const desiredSettings = "uplink.healthInterval"

// Bounds of uplink.healthInterval when set by the fleet.
const (
	minFleetHealthInterval = time.Second
	maxFleetHealthInterval = 24 * time.Hour
)

// appliedDesired is what the last desired document set besides the
// paths, as saved in the store.
type appliedDesired struct {
	Version uint64 `json:"version"`
	// Digest is of the document's content, to tell a repeat of the same
	// version from a different document under a version already used.
	Digest         string            `json:"digest"`
	Labels         map[string]string `json:"labels,omitempty"`
	HealthInterval conf.Duration     `json:"healthInterval,omitempty"`
}

// desiredState holds the applied desired state and applies new documents.
// Only the link's desired goroutine calls apply; the getters are safe
// from any goroutine.
type desiredState struct {
	log   zerolog.Logger
	cfg   *conf.Config
	store *store.Store
	now   func() time.Time

	mu       sync.Mutex
	applied  appliedDesired
	reported []byte // the last report; nil before the first document

	// retime carries a new health interval to the health loop (the
	// newest only; one sender).
	retime chan time.Duration
}

// newDesiredState restores what the last applied document set.
func newDesiredState(cfg *conf.Config, st *store.Store, log zerolog.Logger) (*desiredState, error) {
	s := &desiredState{
		log: log.With().Str("component", "desired").Logger(), cfg: cfg, store: st, now: time.Now,
		retime: make(chan time.Duration, 1),
	}
	raw, rep, err := st.DesiredState()
	if err != nil {
		return nil, err
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &s.applied); err != nil {
			// The retained document is applied again on connect.
			s.log.Warn().Err(err).Msg("stored desired state unreadable: waiting for the fleet's document")
			s.applied = appliedDesired{}
		} else {
			s.reported = rep
		}
	}
	return s, nil
}

// labels are agent.labels with the desired labels added; the config
// file's value wins for a key both set.
func (s *desiredState) labels() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := maps.Clone(s.applied.Labels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, s.cfg.Agent.Labels)
	return out
}

// healthInterval is uplink.healthInterval as set by the fleet; 0: not set.
func (s *desiredState) healthInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied.HealthInterval.D()
}

// version is the version of the applied document; 0 before the first.
func (s *desiredState) version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied.Version
}

// fleetPathSetter is what apply needs from the dispatcher: the entry check
// and the set replacement paths.set uses, under its lock.
type fleetPathSetter interface {
	fleetPathEntry(name string, raw json.RawMessage, key string) (conf.PathConf, error)
	setFleetPaths(set map[string]conf.PathConf) error
	lockPaths() func()
}

// apply applies one received document and returns the report to publish
// (nil: nothing to publish) and whether the labels changed.
func (s *desiredState) apply(raw []byte, paths fleetPathSetter) (report []byte, labelsChanged bool) {
	rep := uplink.Reported{AppliedAt: s.now().UTC(), Errors: []uplink.StateError{}}
	fail := func(key string, code uplink.ErrorCode, format string, args ...any) {
		rep.Errors = append(rep.Errors, uplink.StateError{Key: key, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	encode := func() []byte {
		rep.OK = len(rep.Errors) == 0
		b, _ := json.Marshal(rep)
		return b
	}
	if len(raw) > uplink.MaxDesiredBytes {
		fail("", uplink.CodeTooLarge, "document of %d bytes, limit %d", len(raw), uplink.MaxDesiredBytes)
		return encode(), false
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		fail("", uplink.CodeBadRequest, "not a JSON object")
		return encode(), false
	}
	if err := json.Unmarshal(members["version"], &rep.Version); err != nil || rep.Version == 0 {
		rep.Version = 0
		fail("version", uplink.CodeBadRequest, "version must be a whole number above 0")
		return encode(), false
	}
	digest := contentDigest(raw)

	s.mu.Lock()
	cur := s.applied
	last := s.reported
	s.mu.Unlock()
	switch {
	case rep.Version < cur.Version:
		s.log.Warn().Uint64("version", rep.Version).Uint64("applied", cur.Version).Msg("stale desired state ignored")
		return last, false
	case rep.Version == cur.Version && digest == cur.Digest:
		return last, false // the retained document again, after a connect
	case rep.Version == cur.Version:
		// Not applied: the report of the applied one, plus why.
		var prev uplink.Reported
		_ = json.Unmarshal(last, &prev)
		prev.Errors = append(prev.Errors, uplink.StateError{Key: "version", Code: uplink.CodeConflict,
			Message: fmt.Sprintf("version %d was applied with other content; write the change under a higher version", rep.Version)})
		prev.OK = false
		b, _ := json.Marshal(prev)
		return b, false
	}

	for _, k := range slices.Sorted(maps.Keys(members)) {
		switch k {
		case "version", "paths", "labels", "config":
		default:
			fail(k, uplink.CodeBadRequest, "not a member of the desired state (version, paths, labels, config)")
		}
	}
	next := appliedDesired{Version: rep.Version, Digest: digest, Labels: cur.Labels, HealthInterval: cur.HealthInterval}
	if p, ok := members["paths"]; ok && !isNull(p) {
		s.applyPaths(p, paths, fail)
	}
	if l, ok := members["labels"]; ok && !isNull(l) {
		next.Labels = s.desiredLabels(l, cur.Labels, fail)
	} else {
		next.Labels = nil
	}
	if c, ok := members["config"]; ok && !isNull(c) {
		next.HealthInterval = s.desiredConfig(c, cur.HealthInterval, fail)
	} else {
		next.HealthInterval = 0
	}

	report = encode()
	saved, _ := json.Marshal(next)
	if err := s.store.PutDesiredState(saved, report); err != nil {
		// Applied but not saved: the next start applies the previous
		// document's labels and settings until the fleet's comes again.
		s.log.Error().Err(err).Msg("save desired state")
		fail("", uplink.CodeInternal, "applied, but not saved: %s", redact.Error(err))
		report = encode()
	}
	before := s.labels()
	s.mu.Lock()
	s.applied, s.reported = next, report
	s.mu.Unlock()
	if next.HealthInterval != cur.HealthInterval {
		select {
		case <-s.retime:
		default:
		}
		s.retime <- s.intervalOr(next.HealthInterval.D())
	}
	ev := s.log.Info()
	if !rep.OK {
		ev = s.log.Warn().Int("errors", len(rep.Errors))
	}
	ev.Uint64("version", rep.Version).Msg("desired state applied")
	return report, !maps.Equal(before, s.labels())
}

// intervalOr is d, or the configured health interval when d is 0.
func (s *desiredState) intervalOr(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return s.cfg.Uplink.HealthInterval.D()
}

// applyPaths makes the fleet-managed set the document's, less the
// entries that cannot be applied (those keep their current entry).
func (s *desiredState) applyPaths(raw json.RawMessage, paths fleetPathSetter, fail func(string, uplink.ErrorCode, string, ...any)) {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		fail("paths", uplink.CodeBadRequest, "paths must be an object of path entries")
		return
	}
	unlock := paths.lockPaths()
	defer unlock()
	cur, err := s.store.FleetPaths()
	if err != nil {
		fail("paths", uplink.CodeInternal, "%s", redact.Error(err))
		return
	}
	set := make(map[string]conf.PathConf, len(entries))
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		pc, err := paths.fleetPathEntry(name, entries[name], "")
		if err != nil {
			we := toWireError(err)
			fail("paths."+name, we.Code, "%s", we.Message)
			if old, ok := cur[name]; ok {
				set[name] = old
			}
			continue
		}
		set[name] = pc
	}
	if err := paths.setFleetPaths(set); err != nil {
		fail("paths", uplink.CodeInternal, "%s", redact.Error(err))
	}
}

// desiredLabels returns the labels of the document that can be applied;
// when the member is not an object of strings, the current ones.
func (s *desiredState) desiredLabels(raw json.RawMessage, cur map[string]string, fail func(string, uplink.ErrorCode, string, ...any)) map[string]string {
	var in map[string]string
	if err := json.Unmarshal(raw, &in); err != nil {
		fail("labels", uplink.CodeBadRequest, "labels must be an object of strings")
		return cur
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		if err := uplink.ValidateLabel(k, v); err != nil {
			fail("labels."+k, uplink.CodeBadRequest, "%s", err)
			continue
		}
		if fv, ok := s.cfg.Agent.Labels[k]; ok && fv != v {
			fail("labels."+k, uplink.CodeReadOnly, "the config file sets %s to %q", k, fv)
			continue
		}
		out[k] = v
	}
	return out
}

// desiredConfig returns uplink.healthInterval as the document sets it (0:
// not set); every other key is refused. When the value cannot be
// applied, the current one stays.
func (s *desiredState) desiredConfig(raw json.RawMessage, cur conf.Duration, fail func(string, uplink.ErrorCode, string, ...any)) conf.Duration {
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sections); err != nil {
		fail("config", uplink.CodeBadRequest, "config must be an object")
		return cur
	}
	var out conf.Duration
	for _, sec := range slices.Sorted(maps.Keys(sections)) {
		var keys map[string]json.RawMessage
		if sec != "uplink" || json.Unmarshal(sections[sec], &keys) != nil {
			fail("config."+sec, uplink.CodeBadRequest, "not a setting the fleet may change (%s)", desiredSettings)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			key := sec + "." + k
			if key != "uplink.healthInterval" {
				fail("config."+key, uplink.CodeBadRequest, "not a setting the fleet may change (%s)", desiredSettings)
				continue
			}
			var d conf.Duration
			if err := json.Unmarshal(keys[k], &d); err != nil {
				fail("config."+key, uplink.CodeBadRequest, "%s", err)
				out = cur
				continue
			}
			if d.D() < minFleetHealthInterval || d.D() > maxFleetHealthInterval {
				fail("config."+key, uplink.CodeBadRequest, "%s: want %s to %s", d.D(), minFleetHealthInterval, maxFleetHealthInterval)
				out = cur
				continue
			}
			if s.cfg.SetByFile(key) && s.cfg.Uplink.HealthInterval != d {
				fail("config."+key, uplink.CodeReadOnly, "the config file sets %s to %s", key, s.cfg.Uplink.HealthInterval.D())
				continue
			}
			out = d
		}
	}
	return out
}

// contentDigest identifies a document's content independently of its
// formatting (re-encoding sorts the keys).
func contentDigest(raw []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) == nil {
		if b, err := json.Marshal(v); err == nil {
			raw = b
		}
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

// lockPaths takes the lock that serialises path changes.
func (d *dispatcher) lockPaths() func() {
	d.changing.Lock()
	return d.changing.Unlock
}

// runDesired applies the desired documents the uplink hands over and
// publishes the reports; it runs while the link runs with an uplink.
func (l *link) runDesired(ctx context.Context) error {
	ds := l.a.desired
	for {
		select {
		case <-ctx.Done():
			return nil
		case raw := <-l.client.Desired():
			report, labelsChanged := ds.apply(raw, l.disp)
			if labelsChanged {
				if err := l.client.SetLabels(ctx, ds.labels()); err != nil {
					l.log.Warn().Str("error", redact.Error(err)).Msg("status with the new labels not published")
				}
			}
			if report == nil {
				continue
			}
			// Not connected: the broker sends the retained document again
			// on the next connect, and the report goes out then.
			if err := l.client.PublishReported(ctx, report); err != nil {
				l.log.Debug().Str("error", redact.Error(err)).Msg("desired state report not published")
			}
		}
	}
}
