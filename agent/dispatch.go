package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/uplink"
)

// Journal bounds: a command id is remembered for a week, and the newest
// 10000 at most.
const (
	journalMaxAge   = 7 * 24 * time.Hour
	journalMaxCount = 10000
	// journalPruneEvery commands, the journal is pruned.
	journalPruneEvery = 256
	// maxCommandID is the longest id accepted (it becomes a topic level).
	maxCommandID = 128
)

// pathManager is what the dispatcher needs from streaming.Manager.
type pathManager interface {
	Paths() []streaming.PathInfo
	Path(name string) (streaming.PathInfo, bool)
	AddPath(name string, c streaming.PathConfig) error
	UpdatePath(name string, c streaming.PathConfig) error
	SetPath(name string, c streaming.PathConfig) error
	RemovePath(name string) error
	RestartPath(name string) error
}

// request is one command being handled. A handler may set after, run once
// the reply has been sent (agent.restart).
type request struct {
	name  string
	args  json.RawMessage
	after func()
}

type handler func(ctx context.Context, r *request) (any, error)

// dispatcher runs commands from MQTT (with the journal) and from the local
// API (without it) through one table, so both behave the same.
type dispatcher struct {
	log     zerolog.Logger
	store   *store.Store
	paths   pathManager
	rec     recordControl // nil: recording commands answer as if nothing records
	cfg     *conf.Config
	health  func(ctx context.Context) uplink.Health
	restart func()
	update  interface {
		Start(update.Request) (update.Reply, error)
	}
	events   *eventSink
	now      func() time.Time
	handlers map[string]handler
	handled  int // MQTT commands seen; only the dispatch goroutine touches it

	// changing serialises commands that change paths: MQTT and the local
	// API may run them at the same time, and each keeps the store and the
	// path manager in step over several calls.
	changing sync.Mutex
}

func newDispatcher(d *dispatcher) *dispatcher {
	d.log = d.log.With().Str("component", "dispatch").Logger()
	if d.now == nil {
		d.now = time.Now
	}
	d.handlers = map[string]handler{
		"ping":          d.ping,
		"status":        d.status,
		"config.get":    d.configGet,
		"paths.list":    d.pathsList,
		"paths.add":     d.pathsAdd,
		"paths.update":  d.pathsUpdate,
		"paths.remove":  d.pathsRemove,
		"paths.set":     d.pathsSet,
		"path.restart":  d.pathRestart,
		"agent.restart": d.agentRestart,
		"agent.update":  d.agentUpdate,
		// Recording (agent/record.go).
		"recordings.list": d.recordingsList,
		"path.record":     d.pathRecord,
	}
	return d
}

func cmdErr(code uplink.ErrorCode, format string, args ...any) *uplink.Error {
	return &uplink.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// handleMQTT runs one command received on P/ID/cmd/NAME. It returns the
// reply and its id, or id "" when no id could be read (a cmd.rejected
// event is raised instead). after, if not nil, runs once the reply is out.
func (d *dispatcher) handleMQTT(ctx context.Context, in uplink.Incoming) (id string, reply []byte, after func()) {
	id, cmd, perr := parseCommand(in.Payload)
	if id == "" {
		d.events.emit(uplink.EventCmdRejected, "", map[string]any{"cmd": in.Name, "reason": perr.Message, "bytes": len(in.Payload)})
		return "", nil, nil
	}
	log := d.log.With().Str("cmd", in.Name).Str("id", id).Logger()
	if d.handled++; d.handled%journalPruneEvery == 1 {
		if _, err := d.store.PruneCommands(journalMaxAge, journalMaxCount); err != nil {
			log.Warn().Err(err).Msg("prune command journal")
		}
	}
	entry, found, err := d.store.BeginCommand(id, in.Name)
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return id, encodeReply(id, in.Name, nil, cmdErr(uplink.CodeInternal, "journal unavailable")), nil
	}
	if found {
		if entry.State == store.CommandDone {
			log.Info().Msg("repeated command id: stored reply sent, not run again")
			return id, entry.Reply, nil
		}
		// Pending: the agent stopped while running it. Not run twice.
		reply = encodeReply(id, in.Name, nil, cmdErr(uplink.CodeInternal, "interrupted: the agent stopped while running this command; it was not run again"))
		d.finish(log, id, in.Name, reply)
		return id, reply, nil
	}
	var result any
	var r *request
	switch {
	case perr != nil:
		err = perr
	case cmd.ExpiresAt != nil && d.now().After(*cmd.ExpiresAt):
		err = cmdErr(uplink.CodeExpired, "expired at %s", cmd.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		r = &request{name: in.Name, args: cmd.Args}
		result, err = d.call(ctx, r)
	}
	reply = encodeReply(id, in.Name, result, err)
	d.finish(log, id, in.Name, reply)
	if err != nil {
		log.Info().Str("error", redact.Error(err)).Msg("command failed")
	} else {
		log.Info().Msg("command done")
	}
	if r != nil {
		after = r.after
	}
	return id, reply, after
}

// busyReply answers a command the queue had no room for: its journaled
// reply when it was answered before (a fleet retry), otherwise busy. Busy
// is not journaled: the same id sent again later is run. A payload without
// a usable id raises cmd.rejected (id "").
func (d *dispatcher) busyReply(in uplink.Incoming) (id string, reply []byte) {
	id, _, perr := parseCommand(in.Payload)
	if id == "" {
		d.events.emit(uplink.EventCmdRejected, "", map[string]any{"cmd": in.Name, "reason": perr.Message, "bytes": len(in.Payload)})
		return "", nil
	}
	if e, err := d.store.Command(id); err == nil && e.State == store.CommandDone {
		return id, e.Reply
	}
	d.log.Debug().Str("cmd", in.Name).Str("id", id).Msg("command queue full: answered busy")
	return id, encodeReply(id, in.Name, nil, cmdErr(uplink.CodeBusy, "the agent's command queue is full; not run: send it again with the same id later"))
}

func (d *dispatcher) finish(log zerolog.Logger, id, name string, reply []byte) {
	if err := d.store.FinishCommand(id, name, reply); err != nil {
		log.Error().Err(err).Msg("journal reply")
	}
}

// call runs the handler of r.name; a panic becomes an internal error.
func (d *dispatcher) call(ctx context.Context, r *request) (result any, err error) {
	h, ok := d.handlers[r.name]
	if !ok {
		return nil, cmdErr(uplink.CodeUnknownCommand, "unknown command %q", r.name)
	}
	if strings.HasPrefix(r.name, "paths.") || r.name == "path.restart" || r.name == "path.record" {
		d.changing.Lock()
		defer d.changing.Unlock()
	}
	defer func() {
		if p := recover(); p != nil {
			d.log.Error().Str("cmd", r.name).Str("panic", redact.String(fmt.Sprint(p))).
				Str("stack", redact.String(string(debug.Stack()))).Msg("command handler panicked")
			result, err = nil, cmdErr(uplink.CodeInternal, "the command failed unexpectedly")
		}
	}()
	return h(ctx, r)
}

// Call runs a command without the journal (local API). The returned error
// is an *uplink.Error.
func (d *dispatcher) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, *uplink.Error) {
	r := &request{name: name, args: args}
	res, err := d.call(ctx, r)
	if err != nil {
		return nil, toWireError(err)
	}
	b, merr := json.Marshal(res)
	if merr != nil {
		return nil, cmdErr(uplink.CodeInternal, "encode result: %v", merr)
	}
	if r.after != nil {
		r.after()
	}
	// Results redact their secrets themselves (conf's types, streaming's
	// path info); this pass catches what one of them forgot.
	return redact.JSON(b), nil
}

// toWireError is the error shown to the fleet or an API client, redacted.
func toWireError(err error) *uplink.Error {
	var we *uplink.Error
	if errors.As(err, &we) {
		return &uplink.Error{Code: we.Code, Message: redact.String(we.Message)}
	}
	return cmdErr(uplink.CodeInternal, "%s", redact.Error(err))
}

func encodeReply(id, name string, result any, err error) []byte {
	r := uplink.Reply{ID: id, Cmd: name, OK: err == nil}
	if err != nil {
		r.Error = toWireError(err)
	} else {
		b, merr := json.Marshal(result)
		if merr != nil {
			r.OK, r.Error = false, cmdErr(uplink.CodeInternal, "encode result: %v", merr)
		} else {
			r.Result = b
		}
	}
	out, _ := json.Marshal(r)
	return redact.JSON(out)
}

// parseCommand reads the id first, so a reply can be sent for everything
// but payloads without a usable id. perr is a bad_request or too_large
// error for the reply; with id "" it says why the command was rejected.
func parseCommand(payload []byte) (id string, cmd uplink.Command, perr *uplink.Error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		if len(payload) > uplink.MaxCommandBytes {
			return "", cmd, cmdErr(uplink.CodeTooLarge, "payload of %d bytes, limit %d", len(payload), uplink.MaxCommandBytes)
		}
		return "", cmd, cmdErr(uplink.CodeBadRequest, "payload is not a JSON object")
	}
	raw, ok := fields["id"]
	if !ok {
		return "", cmd, cmdErr(uplink.CodeBadRequest, "no id")
	}
	if err := json.Unmarshal(raw, &id); err != nil || id == "" {
		return "", cmd, cmdErr(uplink.CodeBadRequest, "id must be a non-empty string")
	}
	if len(id) > maxCommandID || strings.ContainsAny(id, "+#/\x00") || !isPrintable(id) {
		return "", cmd, cmdErr(uplink.CodeBadRequest, "id unusable as a topic level")
	}
	cmd.ID = id
	if len(payload) > uplink.MaxCommandBytes {
		return id, cmd, cmdErr(uplink.CodeTooLarge, "payload of %d bytes, limit %d", len(payload), uplink.MaxCommandBytes)
	}
	for k := range fields {
		if k != "id" && k != "args" && k != "expiresAt" {
			return id, cmd, cmdErr(uplink.CodeBadRequest, "unknown field %q", k)
		}
	}
	if a, ok := fields["args"]; ok && !bytes.Equal(bytes.TrimSpace(a), []byte("null")) {
		if t := bytes.TrimSpace(a); len(t) == 0 || t[0] != '{' {
			return id, cmd, cmdErr(uplink.CodeBadRequest, "args must be an object")
		}
		cmd.Args = a
	}
	if e, ok := fields["expiresAt"]; ok {
		var s string
		if err := json.Unmarshal(e, &s); err != nil {
			return id, cmd, cmdErr(uplink.CodeBadRequest, "expiresAt must be an RFC 3339 string")
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return id, cmd, cmdErr(uplink.CodeBadRequest, "expiresAt %q is not RFC 3339", s)
		}
		cmd.ExpiresAt = &t
	}
	return id, cmd, nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

// decodeArgs decodes args strictly: an unknown key, a wrong type and a key
// only the config file may set (runOn*) are bad_request, named as camgate
// spells them ("args.conf.maxReaders: want a whole number, got a string").
func decodeArgs(args json.RawMessage, v any) error {
	if len(args) == 0 {
		args = []byte("{}")
	}
	if err := conf.DecodeJSON(args, v, "args"); err != nil {
		return cmdErr(uplink.CodeBadRequest, "%s", redact.Error(err))
	}
	return nil
}

func (d *dispatcher) ping(_ context.Context, r *request) (any, error) {
	return map[string]any{"pong": true, "ts": d.now().UTC()}, nil
}

func (d *dispatcher) status(ctx context.Context, _ *request) (any, error) {
	return d.health(ctx), nil
}

func (d *dispatcher) configGet(_ context.Context, _ *request) (any, error) {
	// conf's Secret and SecretURL types redact themselves in JSON.
	return d.cfg, nil
}

// pathListing is one entry of paths.list: the configuration (redacted)
// with the live figures when the path exists now. Origin is "file" or
// "fleet" for the entries; a live path made by a catch-all entry (a
// publisher on an all_others name, a reader of a "~regexp" name) is listed
// too, with that entry's name as its origin and the entry's conf.
type pathListing struct {
	Name   string        `json:"name"`
	Origin string        `json:"origin"` // file | fleet | all_others | ~regexp
	Conf   conf.PathConf `json:"conf"`
	*streaming.PathInfo
}

func (d *dispatcher) listing(name, origin string, pc conf.PathConf) pathListing {
	l := pathListing{Name: name, Origin: origin, Conf: pc}
	if info, ok := d.paths.Path(name); ok {
		l.PathInfo = &info
	}
	return l
}

func (d *dispatcher) pathsList(_ context.Context, _ *request) (any, error) {
	fleet, err := d.store.FleetPaths()
	if err != nil {
		return nil, err
	}
	var out []pathListing
	for name, pc := range d.cfg.Paths {
		out = append(out, d.listing(name, "file", pc))
	}
	for name, pc := range fleet {
		if _, inFile := d.cfg.Paths[name]; !inFile {
			out = append(out, d.listing(name, "fleet", pc))
		}
	}
	for _, info := range d.paths.Paths() {
		if info.Entry == "" {
			continue
		}
		_, inFile := d.cfg.Paths[info.Name]
		if _, inFleet := fleet[info.Name]; inFile || inFleet {
			continue
		}
		out = append(out, pathListing{Name: info.Name, Origin: info.Entry, Conf: d.cfg.Paths[info.Entry], PathInfo: &info})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if out == nil {
		out = []pathListing{}
	}
	return map[string]any{"paths": out}, nil
}

type pathArgs struct {
	Name string          `json:"name"`
	Conf json.RawMessage `json:"conf"`
}

// checkFleetName refuses names that are not concrete paths or that the
// config file owns.
func (d *dispatcher) checkFleetName(name string) error {
	if err := guard.ValidatePathName(name); err != nil {
		return cmdErr(uplink.CodeBadRequest, "%s", err)
	}
	if _, inFile := d.cfg.Paths[name]; inFile {
		return cmdErr(uplink.CodeReadOnly, "path %q comes from the config file and cannot be changed over the fleet link", name)
	}
	return nil
}

func (d *dispatcher) decodePath(r *request) (string, conf.PathConf, error) {
	var a pathArgs
	if err := decodeArgs(r.args, &a); err != nil {
		return "", conf.PathConf{}, err
	}
	if err := d.checkFleetName(a.Name); err != nil {
		return "", conf.PathConf{}, err
	}
	if len(a.Conf) == 0 || bytes.Equal(bytes.TrimSpace(a.Conf), []byte("null")) {
		return "", conf.PathConf{}, cmdErr(uplink.CodeBadRequest, "conf is required")
	}
	pc, err := decodeFleetPath(a.Conf, "args.conf")
	if err != nil {
		return "", conf.PathConf{}, cmdErr(uplink.CodeBadRequest, "%s", err)
	}
	if err := d.checkPathConf(pc); err != nil {
		return "", conf.PathConf{}, cmdErr(uplink.CodeBadRequest, "args.conf.%s", redact.Error(err))
	}
	return a.Name, pc, nil
}

func (d *dispatcher) pathsAdd(_ context.Context, r *request) (any, error) {
	name, pc, err := d.decodePath(r)
	if err != nil {
		return nil, err
	}
	if _, err := d.store.FleetPath(name); err == nil {
		return nil, cmdErr(uplink.CodeConflict, "path %q exists", name)
	}
	if err := d.paths.AddPath(name, pathConfig(d.cfg.PathDefaults, pc)); err != nil {
		if errors.Is(err, streaming.ErrPathExists) {
			return nil, cmdErr(uplink.CodeConflict, "path %q exists", name)
		}
		return nil, err
	}
	if err := d.store.PutFleetPath(name, pc); err != nil {
		_ = d.paths.RemovePath(name) // keep the running set equal to the stored one
		return nil, err
	}
	d.syncRecord(name, &pc)
	return d.listing(name, "fleet", pc), nil
}

func (d *dispatcher) pathsUpdate(_ context.Context, r *request) (any, error) {
	name, pc, err := d.decodePath(r)
	if err != nil {
		return nil, err
	}
	old, err := d.store.FleetPath(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, cmdErr(uplink.CodeNotFound, "no fleet path %q", name)
	} else if err != nil {
		return nil, err
	}
	if err := d.paths.SetPath(name, pathConfig(d.cfg.PathDefaults, pc)); err != nil {
		return nil, err
	}
	if err := d.store.PutFleetPath(name, pc); err != nil {
		_ = d.paths.SetPath(name, pathConfig(d.cfg.PathDefaults, old))
		return nil, err
	}
	d.syncRecord(name, &pc)
	return d.listing(name, "fleet", pc), nil
}

type nameArgs struct {
	Name string `json:"name"`
}

func (d *dispatcher) pathsRemove(_ context.Context, r *request) (any, error) {
	var a nameArgs
	if err := decodeArgs(r.args, &a); err != nil {
		return nil, err
	}
	if err := d.checkFleetName(a.Name); err != nil {
		return nil, err
	}
	if err := d.store.DeleteFleetPath(a.Name); errors.Is(err, store.ErrNotFound) {
		return nil, cmdErr(uplink.CodeNotFound, "no fleet path %q", a.Name)
	} else if err != nil {
		return nil, err
	}
	d.syncRecord(a.Name, nil)
	if err := d.paths.RemovePath(a.Name); err != nil && !errors.Is(err, streaming.ErrPathNotFound) {
		return nil, err
	}
	return struct{}{}, nil
}

type setArgs struct {
	Paths map[string]json.RawMessage `json:"paths"`
}

func (d *dispatcher) pathsSet(_ context.Context, r *request) (any, error) {
	var a setArgs
	if err := decodeArgs(r.args, &a); err != nil {
		return nil, err
	}
	if a.Paths == nil {
		return nil, cmdErr(uplink.CodeBadRequest, "paths is required (an empty object removes every fleet path)")
	}
	set := make(map[string]conf.PathConf, len(a.Paths))
	for name, raw := range a.Paths {
		pc, err := d.fleetPathEntry(name, raw, "args.paths."+name)
		if err != nil {
			return nil, err
		}
		set[name] = pc
	}
	if err := d.setFleetPaths(set); err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(set))
	out := make([]pathListing, 0, len(names))
	for _, name := range names {
		out = append(out, d.listing(name, "fleet", set[name]))
	}
	return map[string]any{"paths": out}, nil
}

// fleetPathEntry checks one entry of a fleet-managed set (paths.set and
// desired state): a concrete name the config file does not own, only
// keys the fleet may set, valid values. key names the entry in error
// messages ("" when the caller names it itself).
func (d *dispatcher) fleetPathEntry(name string, raw json.RawMessage, key string) (conf.PathConf, error) {
	if err := d.checkFleetName(name); err != nil {
		return conf.PathConf{}, err
	}
	pc, err := decodeFleetPath(raw, key)
	if err != nil {
		return conf.PathConf{}, cmdErr(uplink.CodeBadRequest, "%s", err)
	}
	if err := d.checkPathConf(pc); err != nil {
		return conf.PathConf{}, cmdErr(uplink.CodeBadRequest, "%s", redact.String(subKey(key, err.Error())))
	}
	return pc, nil
}

// setFleetPaths makes the fleet-managed set exactly set: persisted first,
// then paths that left it removed and new or changed ones (re)started;
// unchanged ones keep their readers. The caller holds d.changing.
func (d *dispatcher) setFleetPaths(set map[string]conf.PathConf) error {
	cur, err := d.store.FleetPaths()
	if err != nil {
		return err
	}
	// Persist first: a crash in between leaves the desired set, which the
	// next start applies.
	if err := d.store.SetFleetPaths(set); err != nil {
		return err
	}
	var errs []error
	for name := range cur {
		if _, keep := set[name]; !keep {
			d.syncRecord(name, nil)
			if err := d.paths.RemovePath(name); err != nil && !errors.Is(err, streaming.ErrPathNotFound) {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		pc := set[name]
		if old, ok := cur[name]; ok && reflect.DeepEqual(old, pc) {
			continue // unchanged: leave its readers alone
		}
		d.syncRecord(name, &pc)
		if err := d.paths.SetPath(name, pathConfig(d.cfg.PathDefaults, pc)); err != nil {
			errs = append(errs, fmt.Errorf("path %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (d *dispatcher) pathRestart(_ context.Context, r *request) (any, error) {
	var a nameArgs
	if err := decodeArgs(r.args, &a); err != nil {
		return nil, err
	}
	if err := guard.ValidatePathName(a.Name); err != nil {
		return nil, cmdErr(uplink.CodeBadRequest, "%s", err)
	}
	if err := d.paths.RestartPath(a.Name); errors.Is(err, streaming.ErrPathNotFound) {
		return nil, cmdErr(uplink.CodeNotFound, "no path %q", a.Name)
	} else if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (d *dispatcher) agentRestart(_ context.Context, r *request) (any, error) {
	if err := decodeArgs(r.args, &struct{}{}); err != nil {
		return nil, err
	}
	r.after = d.restart
	return struct{}{}, nil
}
