package hal

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/shirou/gopsutil/v4/cpu"
)

// TestMetricsThisMachine checks the figures of the machine running the test
// are sane on every platform.
func TestMetricsThisMachine(t *testing.T) {
	// os.TempDir rather than t.TempDir: the test also runs under Wine,
	// whose file deletion fails Go's TempDir cleanup.
	m := &Machine{DataDir: os.TempDir()}
	got, err := m.Metrics(context.Background())
	if err != nil {
		t.Logf("partial metrics: %v", err)
	}
	if got.MemTotalBytes == 0 {
		t.Errorf("memory total = 0")
	}
	if got.MemUsedBytes == 0 || got.MemUsedBytes > got.MemTotalBytes {
		t.Errorf("memory used = %d of %d", got.MemUsedBytes, got.MemTotalBytes)
	}
	if got.DiskFreeBytes == 0 || got.DiskFreeBytes > got.DiskTotalBytes {
		t.Errorf("disk free = %d of %d", got.DiskFreeBytes, got.DiskTotalBytes)
	}
	if got.Uptime <= 0 {
		t.Errorf("uptime = %v", got.Uptime)
	}
	if got.CPUPercent < 0 || got.CPUPercent > 100 {
		t.Errorf("cpu = %v%%", got.CPUPercent)
	}
	var loopback bool
	for _, it := range got.Interfaces {
		if it.Loopback {
			for _, a := range it.Addrs {
				loopback = loopback || a.Addr().IsLoopback()
			}
		}
	}
	if !loopback {
		t.Errorf("no loopback interface with a loopback address in %+v", got.Interfaces)
	}
}

// TestDiskFreeOfMissingDataDir: the store creates the data directory, maybe
// after the first health report; the nearest existing parent is measured.
func TestDiskFreeOfMissingDataDir(t *testing.T) {
	m := &Machine{DataDir: filepath.Join(os.TempDir(), "camgate-hal-test-absent", "data")}
	got, _ := m.Metrics(context.Background())
	if got.DiskFreeBytes == 0 {
		t.Fatalf("disk free of a data dir not created yet = 0")
	}
}

func TestBusyPercent(t *testing.T) {
	cases := []struct {
		name string
		a, b cpu.TimesStat
		want float64
	}{
		{"idle", cpu.TimesStat{Idle: 100}, cpu.TimesStat{Idle: 200}, 0},
		{"half busy", cpu.TimesStat{User: 10, Idle: 10}, cpu.TimesStat{User: 60, Idle: 60}, 50},
		{"iowait counts as idle", cpu.TimesStat{}, cpu.TimesStat{System: 25, Iowait: 75}, 25},
		{"no time passed", cpu.TimesStat{User: 5}, cpu.TimesStat{User: 5}, 0},
		{"counters stepped back", cpu.TimesStat{User: 50, Idle: 50}, cpu.TimesStat{User: 10, Idle: 10}, 0},
	}
	for _, c := range cases {
		if got := busyPercent(c.a, c.b); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: busyPercent = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestIDFromSeedIgnoresSurroundingSpace(t *testing.T) {
	if IDFromSeed("abc\n") != IDFromSeed("abc") {
		t.Fatal("trailing newline changes the id")
	}
	if IDFromSeed("abc") == IDFromSeed("abd") {
		t.Fatal("different seeds give the same id")
	}
}
