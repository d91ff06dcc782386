//go:build linux

package hal

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

// The id of testdata/rpi4 must never change: a changed id makes the box a
// new agent for the fleet after an upgrade.
const rpi4AgentID = "cg-cf8c75a63916"

func TestAgentIDStableAcrossRestarts(t *testing.T) {
	for i := range 2 { // two Machines stand for two runs of the agent
		id, err := (&Machine{SysRoot: "testdata/rpi4"}).AgentID()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if id != rpi4AgentID {
			t.Fatalf("run %d: id = %q, want %q", i, id, rpi4AgentID)
		}
	}
}

func TestAgentIDWithoutMachineID(t *testing.T) {
	_, err := (&Machine{SysRoot: "testdata/nomachineid"}).AgentID()
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported so the agent falls back to its stored id", err)
	}
}

func TestMetricsRecordedTree(t *testing.T) {
	m := &Machine{SysRoot: "testdata/rpi4", DataDir: t.TempDir()}
	got, err := m.Metrics(context.Background())
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	if want := uint64(3884096 * 1024); got.MemTotalBytes != want {
		t.Errorf("memory total = %d, want %d", got.MemTotalBytes, want)
	}
	if want := uint64((3884096 - 3214912) * 1024); got.MemUsedBytes != want {
		t.Errorf("memory used = %d, want %d (total - available)", got.MemUsedBytes, want)
	}
	// First sample: busy share since boot from /proc/stat's cpu line:
	// busy = total 991500 - idle 800000 - iowait 40000.
	if want := 151500.0 / 991500 * 100; math.Abs(got.CPUPercent-want) > 1e-6 {
		t.Errorf("cpu = %v%%, want %v%%", got.CPUPercent, want)
	}
	wantZones := []ThermalZone{
		{Name: "thermal_zone0", Type: "cpu-thermal", Celsius: 48.686},
		{Name: "thermal_zone1", Type: "gpu-thermal", Celsius: 51.12},
		{Name: "thermal_zone10", Type: "ddr-thermal", Celsius: 40.25},
	}
	if len(got.Thermal) != len(wantZones) {
		t.Fatalf("zones = %+v, want %+v", got.Thermal, wantZones)
	}
	for i, z := range wantZones {
		if g := got.Thermal[i]; g.Name != z.Name || g.Type != z.Type || math.Abs(g.Celsius-z.Celsius) > 1e-9 {
			t.Errorf("zone %d = %+v, want %+v", i, g, z)
		}
	}
	if got.TemperatureC == nil || math.Abs(*got.TemperatureC-51.12) > 1e-9 {
		t.Errorf("temperature = %v, want the hottest zone 51.12", got.TemperatureC)
	}

	// Nothing changed in the recorded /proc/stat: no CPU time passed.
	again, err := m.Metrics(context.Background())
	if err != nil {
		t.Fatalf("second metrics: %v", err)
	}
	if again.CPUPercent != 0 {
		t.Errorf("cpu between identical samples = %v%%, want 0", again.CPUPercent)
	}
}

// A tree without /proc and thermal zones: the temperature is omitted (nil,
// not an error), the figures that can be read are still returned, and the
// error names what could not.
func TestMetricsPartialTree(t *testing.T) {
	m := &Machine{SysRoot: "testdata/nomachineid", DataDir: t.TempDir()}
	got, err := m.Metrics(context.Background())
	if err == nil || !strings.Contains(err.Error(), "read memory") || !strings.Contains(err.Error(), "read cpu times") {
		t.Fatalf("err = %v, want memory and cpu failures named", err)
	}
	if strings.Contains(err.Error(), "thermal") {
		t.Errorf("missing thermal zones reported as an error: %v", err)
	}
	if got.TemperatureC != nil || len(got.Thermal) != 0 {
		t.Errorf("temperature = %v, zones = %v, want none", got.TemperatureC, got.Thermal)
	}
	if got.DiskFreeBytes == 0 || len(got.Interfaces) == 0 {
		t.Errorf("disk free = %d, interfaces = %d: readable figures were dropped", got.DiskFreeBytes, len(got.Interfaces))
	}
}
