package agent

import (
	"context"
	"runtime"
	"time"

	"github.com/camgate/camgate/agent/api"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/uplink"
)

// systemMetrics is what health needs from the platform; *hal.Machine
// satisfies it.
type systemMetrics interface {
	Metrics(ctx context.Context) (hal.Metrics, error)
}

// pathLister is what health needs from the path manager.
type pathLister interface {
	Paths() []streaming.PathInfo
}

// healthSource builds health documents (P/ID/health, the status command,
// GET /v1/health) and the figures behind /metrics.
type healthSource struct {
	id        string
	version   string
	started   time.Time
	bootCount uint64
	paths     pathLister
	system    systemMetrics // nil: runtime figures only
	link      interface{ Stats() uplink.Stats }
	auth      interface{ Stats() auth.Stats } // nil: no auth figures
	store     *store.Store
	outbox    *outbox       // nil without an uplink
	records   recordControl // nil: no recording figures
	events    *eventSink    // nil: no event losses to report
	// listeners returns the figures of every TCP listener; nil: none.
	listeners func() []guard.Stats
	// pending returns the WHEP sessions waiting to connect and the offers
	// refused for it; nil without WebRTC.
	pending func() (int, uint64)
	// webrtcDropped returns the WebRTC datagrams lost in batched sends;
	// nil without WebRTC.
	webrtcDropped func() uint64
	// hlsMuxers returns the paths being muxed into LL-HLS (each is one
	// reader of its path); nil without HLS.
	hlsMuxers func() int
	// retime carries a new interval for runHealth (desired state); nil:
	// the interval never changes.
	retime <-chan time.Duration
}

// snapshot reads every figure now. A figure that cannot be read is left
// out rather than failing the document.
func (h *healthSource) snapshot(ctx context.Context) uplink.Health {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	doc := uplink.Health{
		TS: time.Now().UTC(),
		Agent: uplink.AgentHealth{
			ID: h.id, Version: h.version, Uptime: time.Since(h.started).Seconds(),
			BootCount: h.bootCount, GoVersion: runtime.Version(),
			Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapAlloc,
		},
		Paths: []uplink.PathHealth{},
	}
	if h.system != nil {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, _ := h.system.Metrics(mctx) // partial figures on error
		cancel()
		cpu := m.CPUPercent
		doc.System = uplink.SystemHealth{
			CPUPercent: &cpu, MemTotal: m.MemTotalBytes, MemAvailable: m.MemTotalBytes - m.MemUsedBytes,
			DiskFree: m.DiskFreeBytes, TemperatureC: m.TemperatureC, Uptime: m.Uptime.Seconds(),
		}
		for _, i := range m.Interfaces {
			if i.Loopback {
				continue
			}
			ui := uplink.Interface{Name: i.Name, Up: i.Up}
			for _, a := range i.Addrs {
				ui.Addrs = append(ui.Addrs, a.String())
			}
			doc.System.Interfaces = append(doc.System.Interfaces, ui)
		}
	}
	if h.paths != nil {
		for _, p := range h.paths.Paths() {
			ph := pathHealth(p)
			if h.records != nil {
				if st, ok := h.records.Status(p.Name); ok {
					ph.Recording = recordingHealth(st)
				}
			}
			doc.Paths = append(doc.Paths, ph)
		}
	}
	if h.link != nil {
		doc.Uplink.Connected = h.link.Stats().Connected
	}
	if st, err := h.store.OutboxStats(); err == nil {
		doc.Uplink.OutboxDepth, doc.Uplink.OutboxBytes, doc.Uplink.Dropped = st.Depth, st.Bytes, st.Dropped
		doc.Uplink.AppendFailed = st.Failed
	}
	if h.events != nil {
		doc.Uplink.EventsLost = h.events.lost.Load()
	}
	doc.OK = true
	doc.Listeners = []uplink.ListenerHealth{}
	if h.listeners != nil {
		for _, l := range h.listeners() {
			doc.Listeners = append(doc.Listeners, uplink.ListenerHealth{
				Name: l.Name, Address: l.Addr, State: l.State.String(), Error: l.Err, Connections: l.Open,
				AcceptErrors: l.AcceptErrors, Refused: l.RefusedMaxConns + l.RefusedMaxConnsPerIP,
			})
			if l.State != guard.StateUp {
				doc.OK = false
			}
		}
	}
	return doc
}

func pathHealth(p streaming.PathInfo) uplink.PathHealth {
	return uplink.PathHealth{
		Name: p.Name, State: p.State.String(), Source: p.Source, OnDemand: p.OnDemand,
		Readers: p.Readers, BytesIn: p.BytesIn, BytesOut: p.BytesOut, Bitrate: p.BitrateIn,
		Reconnects: p.Reconnects, LastError: p.LastError,
	}
}

// runHealth appends a health document every interval (and once at start),
// then an outbox.dropped notice when anything was lost since the last one,
// and folds path counters into the store's lifetime stats.
func (h *healthSource) runHealth(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := map[string]streaming.PathInfo{}
	for {
		h.round(ctx, prev)
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case d := <-h.retime:
				t.Reset(d)
			case <-t.C:
				break wait
			}
		}
	}
}

// round is one interval of runHealth.
func (h *healthSource) round(ctx context.Context, prev map[string]streaming.PathInfo) {
	h.outbox.appendHealth(h.snapshot(ctx))
	var lost uint64
	if h.events != nil {
		lost = h.events.lost.Load()
	}
	h.outbox.notify(lost)
	h.foldStats(prev)
}

// foldStats adds the growth of each path's counters since the last call
// to the store's lifetime stats. A counter that went down (path replaced)
// counts from zero.
func (h *healthSource) foldStats(prev map[string]streaming.PathInfo) {
	if h.paths == nil {
		return
	}
	delta := map[string]store.PathStats{}
	for _, p := range h.paths.Paths() {
		o := prev[p.Name]
		d := store.PathStats{
			BytesIn: grow(o.BytesIn, p.BytesIn), BytesOut: grow(o.BytesOut, p.BytesOut),
			Reconnects: grow(o.Reconnects, p.Reconnects), PacketsDropped: grow(o.Dropped, p.Dropped),
		}
		if d != (store.PathStats{}) {
			delta[p.Name] = d
		}
		prev[p.Name] = p
	}
	_ = h.store.AddPathStats(delta) // best effort: lifetime figures, not state
}

func grow(old, cur uint64) uint64 {
	if cur < old {
		return cur
	}
	return cur - old
}

// Metrics implements api.Metrics: path, uplink, outbox, process and
// system figures.
func (h *healthSource) Metrics(ctx context.Context) []api.Family {
	doc := h.snapshot(ctx)
	var (
		bytesIn    = api.Family{Name: "camgate_path_bytes_in_total", Help: "Bytes received from the path's source.", Type: api.Counter}
		bytesOut   = api.Family{Name: "camgate_path_bytes_out_total", Help: "Bytes sent to the path's readers.", Type: api.Counter}
		readers    = api.Family{Name: "camgate_path_readers", Help: "Readers connected to the path.", Type: api.Gauge}
		state      = api.Family{Name: "camgate_path_state", Help: "1 for the path's current state.", Type: api.Gauge}
		reconnects = api.Family{Name: "camgate_path_reconnects_total", Help: "Source reconnections.", Type: api.Counter}
		dropped    = api.Family{Name: "camgate_path_packets_dropped_total", Help: "Packets dropped for slow readers.", Type: api.Counter}
		bitrate    = api.Family{Name: "camgate_path_bitrate_bits", Help: "Received bit rate over the last interval.", Type: api.Gauge}
	)
	if h.paths != nil {
		for _, p := range h.paths.Paths() {
			l := []api.Label{{Name: "path", Value: p.Name}}
			bytesIn.Samples = append(bytesIn.Samples, api.Sample{Labels: l, Value: float64(p.BytesIn)})
			bytesOut.Samples = append(bytesOut.Samples, api.Sample{Labels: l, Value: float64(p.BytesOut)})
			readers.Samples = append(readers.Samples, api.Sample{Labels: l, Value: float64(p.Readers)})
			state.Samples = append(state.Samples, api.Sample{Labels: append(l, api.Label{Name: "state", Value: p.State.String()}), Value: 1})
			reconnects.Samples = append(reconnects.Samples, api.Sample{Labels: l, Value: float64(p.Reconnects)})
			dropped.Samples = append(dropped.Samples, api.Sample{Labels: l, Value: float64(p.Dropped)})
			bitrate.Samples = append(bitrate.Samples, api.Sample{Labels: l, Value: p.BitrateIn})
		}
	}
	one := func(name, help, typ string, v float64) api.Family {
		return api.Family{Name: name, Help: help, Type: typ, Samples: []api.Sample{{Value: v}}}
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	fams := []api.Family{bytesIn, bytesOut, readers, state, reconnects, dropped, bitrate,
		one("camgate_uplink_connected", "1 while connected to the broker.", api.Gauge, b2f(doc.Uplink.Connected)),
		one("camgate_outbox_depth", "Messages waiting in the outbox.", api.Gauge, float64(doc.Uplink.OutboxDepth)),
		one("camgate_outbox_bytes", "Size of the messages waiting in the outbox.", api.Gauge, float64(doc.Uplink.OutboxBytes)),
		one("camgate_outbox_dropped_total", "Outbox messages dropped by its bounds.", api.Counter, float64(doc.Uplink.Dropped)),
		one("camgate_outbox_append_failed_total", "Messages that could not be stored in the outbox (disk full, I/O error).", api.Counter, float64(doc.Uplink.AppendFailed)),
		one("camgate_events_lost_total", "Events dropped before the outbox because its queue was full.", api.Counter, float64(doc.Uplink.EventsLost)),
		one("camgate_uptime_seconds", "Seconds since the agent started.", api.Gauge, doc.Agent.Uptime),
		one("camgate_boot_count", "Times the agent has started on this data directory.", api.Counter, float64(doc.Agent.BootCount)),
		one("camgate_go_goroutines", "Goroutines.", api.Gauge, float64(doc.Agent.Goroutines)),
		one("camgate_go_heap_bytes", "Go heap in use.", api.Gauge, float64(doc.Agent.HeapBytes)),
	}
	if h.link != nil {
		st := h.link.Stats()
		fams = append(fams,
			one("camgate_uplink_connects_total", "Successful broker connections.", api.Counter, float64(st.Connects)),
			one("camgate_uplink_published_total", "Outbox messages acknowledged by the broker.", api.Counter, float64(st.Published)),
			one("camgate_uplink_commands_busy_total", "Commands answered busy because the command queue was full.", api.Counter, float64(st.CommandsBusy)),
			one("camgate_uplink_commands_deferred_total", "Commands left with the broker for a later session because the agent held enough.", api.Counter, float64(st.CommandsDeferred)))
	}
	fams = append(fams, h.listenerMetrics()...)
	if h.auth != nil {
		st := h.auth.Stats()
		fams = append(fams,
			one("camgate_auth_argon2_verifications_total", "argon2 password hashes computed.", api.Counter, float64(st.Argon2Verifications)),
			one("camgate_auth_cache_hits_total", "argon2 checks answered by the cache of recent successes.", api.Counter, float64(st.CacheHits)),
			one("camgate_auth_denied_total", "Requests refused after their credentials were checked.", api.Counter, float64(st.Denied)),
			one("camgate_auth_throttled_total", "Requests refused unchecked: their address failed too often.", api.Counter, float64(st.Throttled)),
			one("camgate_auth_busy_total", "Requests refused unchecked: no argon2 check could start in time.", api.Counter, float64(st.Busy)))
	}
	s := doc.System
	if s.CPUPercent != nil {
		fams = append(fams, one("camgate_system_cpu_percent", "Busy share of all CPUs.", api.Gauge, *s.CPUPercent))
	}
	if s.MemTotal > 0 {
		fams = append(fams,
			one("camgate_system_memory_total_bytes", "Memory of the box.", api.Gauge, float64(s.MemTotal)),
			one("camgate_system_memory_available_bytes", "Memory available to programs.", api.Gauge, float64(s.MemAvailable)))
	}
	if s.DiskFree > 0 {
		fams = append(fams, one("camgate_system_disk_free_bytes", "Free space on the data directory's file system.", api.Gauge, float64(s.DiskFree)))
	}
	if s.TemperatureC != nil {
		fams = append(fams, one("camgate_system_temperature_celsius", "Hottest thermal zone.", api.Gauge, *s.TemperatureC))
	}
	return fams
}

// listenerMetrics are the figures of the listeners and of the WHEP
// pending-session cap.
func (h *healthSource) listenerMetrics() []api.Family {
	var (
		up       = api.Family{Name: "camgate_listener_up", Help: "1 while the listener accepts connections.", Type: api.Gauge}
		open     = api.Family{Name: "camgate_listener_connections", Help: "Connections open on the listener.", Type: api.Gauge}
		errs     = api.Family{Name: "camgate_listener_accept_errors_total", Help: "Temporary accept errors (too many open files, ...), retried.", Type: api.Counter}
		refused  = api.Family{Name: "camgate_listener_refused_total", Help: "Connections refused by a connection cap.", Type: api.Counter}
		families []api.Family
	)
	if h.listeners != nil {
		for _, l := range h.listeners() {
			lb := []api.Label{{Name: "listener", Value: l.Name}}
			v := 0.0
			if l.State == guard.StateUp {
				v = 1
			}
			up.Samples = append(up.Samples, api.Sample{Labels: lb, Value: v})
			open.Samples = append(open.Samples, api.Sample{Labels: lb, Value: float64(l.Open)})
			errs.Samples = append(errs.Samples, api.Sample{Labels: lb, Value: float64(l.AcceptErrors)})
			for _, r := range []struct {
				reason guard.Reason
				n      uint64
			}{{guard.ReasonMaxConns, l.RefusedMaxConns}, {guard.ReasonMaxConnsPerIP, l.RefusedMaxConnsPerIP}} {
				refused.Samples = append(refused.Samples, api.Sample{Labels: append(lb[:1:1], api.Label{Name: "reason", Value: r.reason.String()}), Value: float64(r.n)})
			}
		}
		families = append(families, up, open, errs, refused)
	}
	if h.hlsMuxers != nil {
		families = append(families, api.Family{Name: "camgate_hls_muxers", Help: "Paths being muxed into LL-HLS now (each counts as one reader of its path).",
			Type: api.Gauge, Samples: []api.Sample{{Value: float64(h.hlsMuxers())}}})
	}
	if h.pending != nil {
		n, ref := h.pending()
		families = append(families,
			api.Family{Name: "camgate_webrtc_pending_sessions", Help: "WHEP sessions answered but not connected yet.", Type: api.Gauge, Samples: []api.Sample{{Value: float64(n)}}},
			api.Family{Name: "camgate_webrtc_pending_refused_total", Help: "WHEP offers refused by webrtc.maxPendingSessions.", Type: api.Counter, Samples: []api.Sample{{Value: float64(ref)}}})
	}
	if h.webrtcDropped != nil {
		families = append(families, api.Family{Name: "camgate_webrtc_send_dropped_total",
			Help: "WebRTC datagrams lost in batched sends: refused by the kernel or past the write deadline.",
			Type: api.Counter, Samples: []api.Sample{{Value: float64(h.webrtcDropped())}}})
	}
	return families
}
