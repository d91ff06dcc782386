package agent

import (
	"context"
	"errors"
	"net"
	"net/url"
	"time"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/record"
	"github.com/camgate/camgate/uplink"
)

// Recording, wired: the record keys of path entries, the recorder's view
// of path changes, its state in health, and the recordings.list and
// path.record commands.

// recordConfig applies pathDefaults to a path entry's record keys.
func recordConfig(d conf.PathDefaults, p conf.PathConf) record.PathConfig {
	c := record.PathConfig{
		Record:          d.Record,
		Pattern:         d.RecordPath,
		SegmentDuration: d.RecordSegmentDuration.D(),
		PartDuration:    d.RecordPartDuration.D(),
		DeleteAfter:     d.RecordDeleteAfter.D(),
		MaxBytes:        uint64(d.RecordMaxBytes),
		MinFreeBytes:    uint64(d.RecordMinFreeBytes),
	}
	if p.Record != nil {
		c.Record = *p.Record
	}
	if p.RecordPath != nil {
		c.Pattern = *p.RecordPath
	}
	if p.RecordSegmentDuration != nil {
		c.SegmentDuration = p.RecordSegmentDuration.D()
	}
	if p.RecordPartDuration != nil {
		c.PartDuration = p.RecordPartDuration.D()
	}
	if p.RecordDeleteAfter != nil {
		c.DeleteAfter = p.RecordDeleteAfter.D()
	}
	if p.RecordMaxBytes != nil {
		c.MaxBytes = uint64(*p.RecordMaxBytes)
	}
	if p.RecordMinFreeBytes != nil {
		c.MinFreeBytes = uint64(*p.RecordMinFreeBytes)
	}
	return c
}

// checkRecord applies the recorder's rules to a path entry (with the
// defaults) and names the key at fault, e.g. "recordPath".
func checkRecord(d conf.PathDefaults, p conf.PathConf) (key string, err error) {
	if err := recordConfig(d, p).Validate(); err != nil {
		var ce *record.ConfigError
		if errors.As(err, &ce) {
			return ce.Key, ce.Err
		}
		return "", err
	}
	return "", nil
}

// recordWaker passes the path manager's events on, and tells the recorder
// when a path got a stream: a publisher on a recorded path, or a dynamic
// path of a recorded "~regexp" or all_others entry.
type recordWaker struct {
	next streaming.EventSink
	rec  *record.Recorder // set before the manager runs
}

func (w *recordWaker) Event(ev streaming.Event) {
	if ev.Type == uplink.EventPathReady && w.rec != nil {
		w.rec.Wake(ev.Path)
	}
	w.next.Event(ev)
}

// playerOrigin allows the web pages of the WebRTC listener (any host name,
// its port) to read the playback listener's answers: the player page's
// timeline. nil without a WebRTC listener.
func playerOrigin(webrtcAddr string) func(string) bool {
	_, port, err := net.SplitHostPort(webrtcAddr)
	if webrtcAddr == "" || err != nil {
		return nil
	}
	return func(origin string) bool {
		u, err := url.Parse(origin)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Port() == port
	}
}

// recordControl is what the dispatcher and health need of the recorder;
// *record.Recorder satisfies it.
type recordControl interface {
	SetPath(name string, c record.PathConfig) error
	RemovePath(name string)
	SetRecording(name string, on bool) error
	Status(name string) (record.Status, bool)
	Statuses() []record.Status
	Spans(name string) ([]record.Span, error)
}

// syncRecord hands a fleet path's record keys to the recorder (nil conf:
// the path is gone).
func (d *dispatcher) syncRecord(name string, pc *conf.PathConf) {
	if d.rec == nil {
		return
	}
	if pc == nil {
		d.rec.RemovePath(name)
		return
	}
	if err := d.rec.SetPath(name, recordConfig(d.cfg.PathDefaults, *pc)); err != nil {
		d.log.Warn().Err(err).Str("path", name).Msg("recording settings not applied")
	}
}

// checkPathConf validates a fleet path's conf: conf's rules and the
// recorder's.
func (d *dispatcher) checkPathConf(pc conf.PathConf) error {
	if err := pc.Validate(); err != nil {
		return err
	}
	if key, err := checkRecord(d.cfg.PathDefaults, pc); err != nil {
		return errors.New(key + ": " + err.Error())
	}
	return nil
}

type recordingsArgs struct {
	Name string `json:"name,omitempty"`
}

// recordingsList: args {"name"} (optional) -> {"recordings": [status...]}
// and, for one name, "spans": [{start, duration}] of what is on disk.
func (d *dispatcher) recordingsList(_ context.Context, r *request) (any, error) {
	var a recordingsArgs
	if err := decodeArgs(r.args, &a); err != nil {
		return nil, err
	}
	if d.rec == nil {
		return map[string]any{"recordings": []record.Status{}}, nil
	}
	if a.Name == "" {
		return map[string]any{"recordings": d.rec.Statuses()}, nil
	}
	st, ok := d.rec.Status(a.Name)
	if !ok {
		return nil, cmdErr(uplink.CodeNotFound, "no recording of %q", a.Name)
	}
	spans, err := d.rec.Spans(a.Name)
	if err != nil {
		spans = []record.Span{}
	}
	return map[string]any{"recordings": []record.Status{st}, "spans": spans}, nil
}

type recordArgs struct {
	Name   string `json:"name"`
	Record *bool  `json:"record"`
}

// pathRecord: args {"name":"cam1","record":true|false} ->
// {"name","record","persisted"}. A fleet-managed path keeps the setting in
// its stored conf (persisted: true); a path of the config file, or one
// made by a "~regexp" or all_others entry, keeps it until the agent
// restarts (persisted: false).
func (d *dispatcher) pathRecord(_ context.Context, r *request) (any, error) {
	var a recordArgs
	if err := decodeArgs(r.args, &a); err != nil {
		return nil, err
	}
	if err := guard.ValidatePathName(a.Name); err != nil {
		return nil, cmdErr(uplink.CodeBadRequest, "%s", err)
	}
	if a.Record == nil {
		return nil, cmdErr(uplink.CodeBadRequest, "record is required (true or false)")
	}
	if d.rec == nil {
		return nil, cmdErr(uplink.CodeInternal, "the recorder is not running")
	}
	persisted := false
	if _, inFile := d.cfg.Paths[a.Name]; !inFile {
		pc, err := d.store.FleetPath(a.Name)
		switch {
		case err == nil:
			pc.Record = a.Record
			if err := d.store.PutFleetPath(a.Name, pc); err != nil {
				return nil, err
			}
			d.syncRecord(a.Name, &pc)
			persisted = true
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	if !persisted {
		if err := d.rec.SetRecording(a.Name, *a.Record); errors.Is(err, record.ErrNotRecorded) {
			return nil, cmdErr(uplink.CodeNotFound, "no path %q", a.Name)
		} else if err != nil {
			return nil, err
		}
	}
	return map[string]any{"name": a.Name, "record": *a.Record, "persisted": persisted}, nil
}

// recordingHealth is a path's recording as health reports it.
func recordingHealth(st record.Status) *uplink.RecordingHealth {
	h := &uplink.RecordingHealth{State: st.State, Bytes: st.Bytes, Segments: st.Segments, LastError: st.LastError}
	if !st.Oldest.IsZero() {
		t := st.Oldest.UTC().Truncate(time.Second)
		h.Oldest = &t
	}
	return h
}
