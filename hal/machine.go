package hal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
)

// Machine reads the box the agent runs on: its identity and its figures for
// the health document and /metrics. The zero value reads the real machine;
// one Machine is safe for concurrent use (health ticker, API, commands).
type Machine struct {
	// SysRoot is prepended to the /proc, /sys and /etc paths read on Linux,
	// so tests can point it at a recorded tree. Default "/". Windows reads
	// the registry and system calls and ignores it.
	SysRoot string
	// DataDir is the directory whose file system's free space is reported
	// (where camgate.db grows). Default: the current directory. It need not
	// exist yet: the nearest existing parent is measured.
	DataDir string

	mu      sync.Mutex
	prevCPU *cpu.TimesStat // previous sample for CPUPercent; nil before the first
}

// Metrics is one snapshot of the machine's figures. Fields that could not be
// read are zero (and the error returned with them says which); figures the
// platform does not expose at all, such as temperature on Windows, are nil.
type Metrics struct {
	// CPUPercent is the busy share of all CPUs since the previous call to
	// Machine.Metrics (since boot on the first call), 0 to 100.
	CPUPercent float64
	// MemUsedBytes is memory in use by programs, not counting reclaimable
	// page cache, so a box with a full cache does not look starved.
	MemUsedBytes  uint64
	MemTotalBytes uint64
	// DiskFreeBytes is free space available to the agent on DataDir's file system.
	DiskFreeBytes  uint64
	DiskTotalBytes uint64
	// Uptime is the time since the machine (not the agent) booted.
	Uptime time.Duration
	// TemperatureC is the hottest thermal zone in degrees Celsius; nil when
	// the platform exposes no temperature, so health omits it instead of
	// reporting 0.
	TemperatureC *float64
	// Thermal lists every readable thermal zone (Linux); empty elsewhere.
	Thermal []ThermalZone
	// Interfaces are the network interfaces with their addresses.
	Interfaces []Interface
}

// ThermalZone is one temperature sensor such as "cpu-thermal" or "x86_pkg_temp".
type ThermalZone struct {
	Name    string // directory name, e.g. thermal_zone0
	Type    string // what the kernel says it measures
	Celsius float64
}

// Interface is one network interface.
type Interface struct {
	Name     string
	MAC      string // empty for interfaces without one (loopback, tunnels)
	MTU      int
	Up       bool
	Loopback bool
	Addrs    []netip.Prefix
}

func (m *Machine) root() string {
	if m.SysRoot == "" {
		return "/"
	}
	return m.SysRoot
}

// ctx hands SysRoot to gopsutil, which reads /proc and /sys through these
// keys instead of the process environment.
func (m *Machine) ctx(parent context.Context) context.Context {
	r := m.root()
	return context.WithValue(parent, common.EnvKey, common.EnvMap{
		common.HostProcEnvKey: filepath.Join(r, "proc"),
		common.HostSysEnvKey:  filepath.Join(r, "sys"),
		common.HostEtcEnvKey:  filepath.Join(r, "etc"),
	})
}

// Metrics reads the machine's figures. It reads as much as it can: on
// error the returned Metrics still holds every figure that was read, and
// the error joins one wrapped error per figure that was not.
func (m *Machine) Metrics(ctx context.Context) (Metrics, error) {
	ctx = m.ctx(ctx)
	var out Metrics
	var errs []error

	if pct, err := m.cpuPercent(ctx); err != nil {
		errs = append(errs, err)
	} else {
		out.CPUPercent = pct
	}

	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("read memory: %w", err))
	} else {
		out.MemTotalBytes = vm.Total
		out.MemUsedBytes = vm.Total - vm.Available
	}

	if du, err := disk.UsageWithContext(ctx, existingDir(m.DataDir)); err != nil {
		errs = append(errs, fmt.Errorf("read disk usage: %w", err))
	} else {
		out.DiskFreeBytes = du.Free
		out.DiskTotalBytes = du.Total
	}

	if up, err := host.UptimeWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("read uptime: %w", err))
	} else {
		out.Uptime = time.Duration(up) * time.Second
	}

	zones, err := readThermalZones(m.root())
	switch {
	case errors.Is(err, ErrNotSupported):
		// No temperature on this platform: leave it out.
	case err != nil:
		errs = append(errs, err)
	default:
		out.Thermal = zones
		out.TemperatureC = hottest(zones)
	}

	ifs, err := interfaces()
	if err != nil {
		errs = append(errs, err)
	}
	out.Interfaces = ifs

	return out, errors.Join(errs...)
}

// cpuPercent compares the CPU times with the previous call's. gopsutil's
// own cpu.Percent(0, ...) keeps that previous sample in a package variable
// shared by every caller; keeping it per Machine makes it testable and
// independent of other users of gopsutil.
func (m *Machine) cpuPercent(ctx context.Context) (float64, error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("read cpu times: %w", err)
	}
	if len(ts) == 0 {
		return 0, fmt.Errorf("read cpu times: no totals")
	}
	now := ts[0]
	m.mu.Lock()
	prev := m.prevCPU
	m.prevCPU = &now
	m.mu.Unlock()
	var base cpu.TimesStat
	if prev != nil {
		base = *prev
	}
	return busyPercent(base, now), nil
}

// busyPercent is the share of time spent neither idle nor waiting for I/O
// between two samples, clamped to 0..100 (counters can step back when a CPU
// goes offline).
func busyPercent(a, b cpu.TimesStat) float64 {
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	total := cpuTotal(b) - cpuTotal(a)
	if total <= 0 {
		return 0
	}
	busy := total - (idle(b) - idle(a))
	pct := busy / total * 100
	return min(max(pct, 0), 100)
}

// cpuTotal is the time a CPU counted in every state. Guest time is left
// out: Linux already counts it in user and nice.
func cpuTotal(t cpu.TimesStat) float64 {
	return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
}

// existingDir returns dir or its nearest existing parent: the data
// directory is created by the store, maybe after the first health report.
func existingDir(dir string) string {
	if dir == "" {
		dir = "."
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "."
	}
	for {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

func hottest(zones []ThermalZone) *float64 {
	if len(zones) == 0 {
		return nil
	}
	t := zones[0].Celsius
	for _, z := range zones[1:] {
		t = max(t, z.Celsius)
	}
	return &t
}

// interfaces lists network interfaces with the standard library, which
// covers every target; gopsutil's net package would add nothing here.
func interfaces() ([]Interface, error) {
	nifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	out := make([]Interface, 0, len(nifs))
	var errs []error
	for _, ni := range nifs {
		it := Interface{
			Name:     ni.Name,
			MAC:      ni.HardwareAddr.String(),
			MTU:      ni.MTU,
			Up:       ni.Flags&net.FlagUp != 0,
			Loopback: ni.Flags&net.FlagLoopback != 0,
		}
		addrs, err := ni.Addrs()
		if err != nil {
			errs = append(errs, fmt.Errorf("list addresses of %s: %w", ni.Name, err))
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			it.Addrs = append(it.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, it)
	}
	return out, errors.Join(errs...)
}
